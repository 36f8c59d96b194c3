import { createTestDatabase, dropTopology, EventTap, eventually, TestDatabase, testPrefix } from '@keyward/testing';
import { Metrics } from '@keyward/observability';
import { randomUUID } from 'node:crypto';
import { ProbeScheduler } from '../probe-scheduler.service';
import { MonitorInstance, seedActiveConnection, sleep, startMonitor } from './monitor-harness';

describe('monitor: scheduled probes across two replicas', () => {
  let db: TestDatabase;
  let prefix: string;
  let replicas: MonitorInstance[];
  let tap: EventTap;
  const env = {
    // 0.02 × 600 = 12 probes a minute, for both replicas together.
    KEYWARD_PROBE_SHARE_OF_RATE_LIMIT: '0.02',
    PLEO_RATE_LIMIT_PER_MINUTE: '600',
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    tap = await new EventTap(prefix).start();
    replicas = [];
  });

  afterAll(async () => {
    for (const replica of replicas) await replica.close();
    await tap?.stop();
    await dropTopology(prefix);
    await db?.drop();
  });

  async function makeDue(count: number): Promise<string[]> {
    const tenants: string[] = [];
    for (let i = 0; i < count; i++) tenants.push((await seedActiveConnection(db)).tenantId);
    // Health rows as the monitor keeps them, each probe already due.
    await db.query(
      `INSERT INTO connection_health (tenant_id, credential_id, state, since, auth_failures, next_probe_at, updated_at)
       SELECT tenant_id, active_credential_id, 'healthy', now(), 0, now() - interval '5 minutes', now() FROM connections WHERE tenant_id = ANY($1)
       ON CONFLICT (tenant_id) DO UPDATE SET next_probe_at = EXCLUDED.next_probe_at`,
      [tenants],
    );
    return tenants;
  }

  const probesOf = (tenants: string[]) => tap.ofType('key.revalidate').filter((e) => tenants.includes(e.tenantId));

  it('runs each due probe exactly once, spread over the interval, and never more than the rate budget a minute', async () => {
    const first = await makeDue(10);
    replicas.push(await startMonitor(db, prefix, env, { schedulerTickMs: 50 }), await startMonitor(db, prefix, env, { schedulerTickMs: 50 }));

    await eventually(() => probesOf(first).length >= 10, 20_000, 'ten probes');
    await sleep(1_000);
    const probes = probesOf(first);
    expect(probes).toHaveLength(10);
    expect(new Set(probes.map((p) => p.tenantId)).size).toBe(10);
    expect(probes.every((p) => p.data.reason === 'probe')).toBe(true);
    const rows = await db.query<{ next_probe_at: Date; last_probe_at: Date }>(`SELECT next_probe_at, last_probe_at FROM connection_health WHERE tenant_id = ANY($1)`, [first]);
    // Each keeps its place in the 24 h cycle.
    for (const row of rows) expect(row.next_probe_at.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);

    // Ten more fall due in the same minute: only two fit the budget of twelve.
    const second = await makeDue(10);
    await eventually(() => probesOf(second).length >= 2, 10_000, 'two more probes');
    await sleep(1_500);
    expect(probesOf(second)).toHaveLength(2);
    expect(tap.ofType('key.revalidate')).toHaveLength(12);

    // Those waiting show as probe lag.
    const text = await replicas[0].app.get(Metrics).registry.metrics();
    const lag = Number(/keyward_monitor_probe_lag_seconds\{service="monitor"\} ([\d.]+)/.exec(text)?.[1]);
    expect(lag).toBeGreaterThan(60);
  });

  it('forgets recorded auth failures past the retention on its repair round', async () => {
    const replica = replicas[0] ?? (await startMonitor(db, prefix, env));
    if (!replicas.includes(replica)) replicas.push(replica);
    const tenant = `t-${randomUUID()}`;
    const [oldId, newId] = [randomUUID(), randomUUID()];
    await db.query(
      `INSERT INTO auth_failures (event_id, tenant_id, status, source, counts_against_active, observed_at) VALUES
         ($1, $3, 401, 'erp', true, now() - interval '100 days'), ($2, $3, 401, 'erp', true, now() - interval '1 day')`,
      [oldId, newId, tenant],
    );
    const scheduler = replica.app.get(ProbeScheduler);
    (scheduler as unknown as { lastReconcile: number }).lastReconcile = 0; // due now
    await scheduler.tick();
    const left = await db.query<{ event_id: string }>(`SELECT event_id FROM auth_failures WHERE tenant_id = $1`, [tenant]);
    expect(left.map((r) => r.event_id)).toEqual([newId]);
  });
});
