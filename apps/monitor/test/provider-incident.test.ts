import { createEvent } from '@keyward/contracts';
import { createTestDatabase, dropTopology, EventTap, eventually, publishExternal, TestDatabase, testPrefix, uninstallAsRotation } from '@keyward/testing';
import { PROVIDER_TENANT_ID } from '../provider-incident.service';
import { authFailed, health, MonitorInstance, publishRevalidated, revalidated, SeededConnection, seedActiveConnection, sleep, startMonitor } from './monitor-harness';

describe('monitor: a storm across most tenants is a Pleo incident, not a wave of reconnection alerts', () => {
  let db: TestDatabase;
  let prefix: string;
  let monitor: MonitorInstance;
  let tap: EventTap;
  let tenants: SeededConnection[];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    tap = await new EventTap(prefix).start();
    tenants = [];
    for (let i = 0; i < 10; i++) tenants.push(await seedActiveConnection(db));
    monitor = await startMonitor(db, prefix, {
      KEYWARD_AUTH_FAILURE_WINDOW_SECONDS: '10',
      KEYWARD_PROVIDER_INCIDENT_SHARE: '0.5',
      KEYWARD_PROVIDER_INCIDENT_MIN_TENANTS: '4',
      PLEO_RATE_LIMIT_PER_MINUTE: '6000',
      KEYWARD_PROBE_SHARE_OF_RATE_LIMIT: '1',
    });
  });

  afterAll(async () => {
    await monitor?.close();
    await tap?.stop();
    await dropTopology(prefix);
    await db?.drop();
  });

  const recorded = (n: number) => eventually(async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM auth_failures`))[0].n) >= n, 20_000, `${n} failures recorded`);

  it('opens one incident, moves no tenant, then lets per-tenant revalidation decide once it closes', async () => {
    const storm = tenants.slice(0, 8);
    // Pleo answers 401 for everyone at once: rounds of failures across 8 of 10 tenants.
    for (let round = 0; round < 2; round++) for (const t of storm) await publishExternal(prefix, authFailed(t.tenantId));
    await recorded(16);
    for (let round = 0; round < 3; round++) for (const t of storm) await publishExternal(prefix, authFailed(t.tenantId, 401, t.credentialId));
    await recorded(40);

    const incident = await tap.waitFor('provider.degraded');
    expect(incident.tenantId).toBe(PROVIDER_TENANT_ID);
    expect(incident.data).toMatchObject({ reason: 'auth_failures_across_tenants' });
    expect(incident.data.affectedTenants).toBeGreaterThanOrEqual(5);
    await sleep(500);
    expect(tap.ofType('provider.degraded')).toHaveLength(1);
    expect(tap.ofType('connection.degraded')).toHaveLength(0);
    expect(tap.ofType('key.revalidate').filter((e) => e.data.reason === 'auth_failures')).toHaveLength(0);
    expect(tap.ofType('alert.reconnection_required')).toHaveLength(0);
    for (const t of storm) expect(await health(db, t.tenantId)).toMatchObject({ state: 'healthy', auth_failures: 5 });
    expect((await db.query(`SELECT 1 FROM provider_incidents WHERE closed_at IS NULL`)).length).toBe(1);

    // The storm passes (the 10 s window empties): one provider.recovered, and every tenant that
    // failed is revalidated on its own.
    const recovered = await tap.waitFor('provider.recovered', () => true, 25_000);
    expect(recovered.data.reason).toBe('auth_failures_across_tenants');
    const probes = await eventually(
      () => {
        const requests = tap.ofType('key.revalidate').filter((e) => storm.some((t) => t.tenantId === e.tenantId));
        return requests.length >= storm.length ? requests : undefined;
      },
      15_000,
      'a revalidation per stormed tenant',
    );
    expect(new Set(probes.map((p) => p.tenantId)).size).toBe(storm.length);

    // Pleo answers again: seven keys are fine; one really was revoked meanwhile.
    const [revoked, ...fine] = storm;
    for (const t of fine)
      await publishRevalidated(
        db,
        prefix,
        revalidated(
          probes.find((p) => p.tenantId === t.tenantId)!,
          'valid',
        ),
      );
    await publishRevalidated(
      db,
      prefix,
      revalidated(
        probes.find((p) => p.tenantId === revoked.tenantId)!,
        'invalid',
        [],
      ),
    );
    const alert = await tap.waitFor('alert.reconnection_required');
    expect(alert.tenantId).toBe(revoked.tenantId);
    await sleep(500);
    expect(tap.ofType('alert.reconnection_required')).toHaveLength(1);
    expect(tap.ofType('provider.degraded')).toHaveLength(1);
    for (const t of fine) expect((await health(db, t.tenantId)).state).toBe('healthy');
  });

  it("counts no rate-limited tenant towards a provider incident: one customer's 429s say nothing about Pleo", async () => {
    await eventually(async () => (await db.query(`SELECT 1 FROM provider_incidents WHERE closed_at IS NULL`)).length === 0, 30_000, 'no open incident');
    const before = tap.ofType('provider.degraded').length;
    const limited: SeededConnection[] = [];
    for (let i = 0; i < 6; i++) limited.push(await seedActiveConnection(db));
    for (const t of limited) {
      const request = createEvent('key.revalidate', { tenantId: t.tenantId, correlationId: `probe-${t.tenantId}`, producer: 'monitor' }, { credentialId: t.credentialId, reason: 'probe' });
      await publishRevalidated(db, prefix, revalidated(request, 'rate_limited', []));
    }
    for (const t of limited) await eventually(async () => (await health(db, t.tenantId)).reason === 'pleo_rate_limited', 15_000, 'rate limit recorded');
    await sleep(500);
    expect(tap.ofType('provider.degraded')).toHaveLength(before);
    expect((await db.query(`SELECT 1 FROM provider_incidents WHERE closed_at IS NULL`)).length).toBe(0);
    for (const t of limited) expect(await health(db, t.tenantId)).toMatchObject({ state: 'healthy' });
  });

  it("opens on unreachable results only once that many active tenants' keys found Pleo unreachable: an uninstalled connection's result does not count (ADR 0060)", async () => {
    await eventually(async () => (await db.query(`SELECT 1 FROM provider_incidents WHERE closed_at IS NULL`)).length === 0, 30_000, 'no open incident');
    const before = tap.ofType('provider.degraded').length;
    const [a, b, gone, d, e] = await Promise.all(Array.from({ length: 5 }, () => seedActiveConnection(db)));
    const unreachable = async (t: SeededConnection) => {
      const request = createEvent('key.revalidate', { tenantId: t.tenantId, correlationId: `probe-${t.tenantId}`, producer: 'monitor' }, { credentialId: t.credentialId, reason: 'probe' });
      await publishRevalidated(db, prefix, revalidated(request, 'unreachable', []));
      await eventually(async () => (await health(db, t.tenantId)).reason === 'pleo_unreachable', 5_000, 'unreachable recorded');
    };
    for (const t of [a, b, gone]) await unreachable(t);
    // The customer uninstalls; its health row still says Pleo was unreachable.
    await uninstallAsRotation(db, gone.tenantId);
    // Four rows say unreachable (the minimum), three of them active tenants': the upper bound would open, the signal does not.
    await unreachable(d);
    await sleep(2_500); // two of the scheduler's reviews
    expect(tap.ofType('provider.degraded')).toHaveLength(before);
    expect((await db.query(`SELECT 1 FROM provider_incidents WHERE closed_at IS NULL`)).length).toBe(0);
    await unreachable(e);
    const incident = await tap.waitFor('provider.degraded', (x) => x.data.reason === 'pleo_unreachable', 5_000);
    expect(incident.data).toMatchObject({ reason: 'pleo_unreachable', affectedTenants: 4 });
  });
});
