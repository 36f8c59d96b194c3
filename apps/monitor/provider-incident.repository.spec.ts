import { DataSource } from 'typeorm';
import { databaseOfTheBlock, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { ConnectionHealthRepository } from './connection-health.repository';
import { activeCountCap, healthRules } from './health-decisions';
import { DEFAULT_MONITOR_TIMINGS } from './monitor-options';
import { ProviderIncidentRepository } from './provider-incident.repository';
import { rotateTo, seedActiveConnection, SeededConnection } from './test/monitor-harness';

/**
 * The provider signal (ADR 0047): failing and unreachable tenants counted from the rows that
 * failed, each checked against its connection; active tenants only as far as a decision needs.
 */
describe('ProviderIncidentRepository: the provider signal', () => {
  const env = { KEYWARD_AUTH_FAILURE_WINDOW_SECONDS: '300', KEYWARD_PROVIDER_INCIDENT_SHARE: '0.3', KEYWARD_PROVIDER_INCIDENT_MIN_TENANTS: '4' };
  let db: TestDatabase;
  let dataSource: DataSource;
  let signals: ProviderIncidentRepository;
  let tenants: SeededConnection[];
  const config = () => testConfig('monitor', { databaseUrl: db.url, prefix: testPrefix(), ...env });

  const block = databaseOfTheBlock();
  beforeAll(async () => {
    ({ db, dataSource } = block);
    signals = new ProviderIncidentRepository(config());
    const health = new ConnectionHealthRepository(config(), DEFAULT_MONITOR_TIMINGS);
    tenants = [];
    for (let i = 0; i < 40; i++) tenants.push(await seedActiveConnection(db));
    await dataSource.transaction((tx) => health.startMonitoringActive(tx));
  });

  const failing = (tenantIds: string[], secondsAgo = 1) =>
    db.query(`UPDATE connection_health SET last_auth_failure_at = now() - make_interval(secs => $2) WHERE tenant_id = ANY ($1)`, [tenantIds, secondsAgo]);
  const signal = () => signals.signal(dataSource.manager);

  it('counts no active tenant while too few fail for it to matter', async () => {
    await failing([tenants[0].tenantId]);
    expect(await signal()).toEqual({ failing: 1, unreachable: 0, active: 0 });
  });

  it('counts active tenants up to the cap the decisions need, the same cap as activeCountCap', async () => {
    await failing(tenants.slice(0, 3).map((t) => t.tenantId));
    const cap = activeCountCap(3, healthRules(config()));
    expect(cap).toBe(22); // 2 × 3 ÷ 0.3 is 20.000000000000004 in floating point, in SQL as in TypeScript
    expect(await signal()).toEqual({ failing: 3, unreachable: 0, active: cap });
  });

  it('counts every active tenant below the cap, so a decision near the threshold sees them all', async () => {
    await failing(tenants.slice(0, 12).map((t) => t.tenantId));
    expect(activeCountCap(12, healthRules(config()))).toBeGreaterThan(40);
    expect(await signal()).toEqual({ failing: 12, unreachable: 0, active: 40 });
  });

  it('leaves out failures that left the window, rows of an old key and connections no longer active, and counts unreachable results', async () => {
    await db.query(`UPDATE connection_health SET last_auth_failure_at = NULL`);
    await failing([tenants[0].tenantId], 301);
    // The row describes a key the tenant replaced (the monitor has not repaired it yet).
    await failing([tenants[1].tenantId]);
    await rotateTo(db, tenants[1]);
    await failing([tenants[2].tenantId]);
    await db.query(`UPDATE connections SET status = 'disabled' WHERE tenant_id = $1`, [tenants[2].tenantId]);
    await failing([tenants[3].tenantId]);
    await db.query(`UPDATE connection_health SET reason = 'pleo_unreachable', updated_at = now() WHERE tenant_id = ANY ($1)`, [tenants.slice(4, 7).map((t) => t.tenantId)]);
    expect(await signal()).toEqual({ failing: 1, unreachable: 3, active: activeCountCap(1, healthRules(config())) });
  });

  it('has an upper bound (ADR 0060) that also counts the rows of an old key and of a connection no longer active, and is the signal where every row counts', async () => {
    const bound = () => signals.signalBound(dataSource.manager);
    // As the test above left them: tenant 1's row describes a replaced key, tenant 2's connection is disabled.
    expect(await bound()).toEqual({ failing: 3, unreachable: 3, active: activeCountCap(3, healthRules(config())) });
    await db.query(`UPDATE connection_health SET last_auth_failure_at = NULL, reason = NULL`);
    await failing(tenants.slice(10, 22).map((t) => t.tenantId));
    // 39 active connections (tenant 2's is disabled), all counted below the cap.
    expect(await signal()).toEqual({ failing: 12, unreachable: 0, active: 39 });
    expect(await bound()).toEqual(await signal());
  });
});
