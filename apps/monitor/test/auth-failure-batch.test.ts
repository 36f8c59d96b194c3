import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createEvent, EventEnvelope } from '@keyward/contracts';
import {
  compromiseAsRotation,
  connectTestBroker,
  createTestDatabase,
  dropTopology,
  EventTap,
  eventually,
  lastValidatedAsRotation,
  replaceAsRotation,
  TestDatabase,
  testPrefix,
} from '@keyward/testing';
import { AuthFailureBatchService } from '../auth-failure-batch.service';
import { ConnectionHealthRepository } from '../connection-health.repository';
import { AuthFailureResult, ConnectionHealthService } from '../connection-health.service';
import { health, MonitorInstance, SeededConnection, seedActiveConnection, sleep, startMonitor } from './monitor-harness';

/**
 * The batch path against the one-event path (ADR 0035): two monitors on two databases seeded
 * alike get the same auth.failed — one event after the other through `onAuthFailed`, as before,
 * and all at once through `onAuthFailures`, as the event server hands a batch over. Everything the
 * monitor decides and writes must come out the same: results, health rows, recorded failures,
 * events, audit entries, provider incidents.
 */
interface Side {
  db: TestDatabase;
  prefix: string;
  monitor: MonitorInstance;
}

/** The loops that would act on their own (probes, repairs, incident reviews) wait an hour: only the events decide. */
const QUIET = { schedulerTickMs: 3_600_000, reconcileEveryMs: 3_600_000, deliveryPollMs: 3_600_000 };

async function startSide(env: Record<string, string>): Promise<Side> {
  const db = await createTestDatabase();
  const prefix = testPrefix();
  return { db, prefix, monitor: await startMonitor(db, prefix, env, QUIET) };
}

async function stopSide(side: Side | undefined): Promise<void> {
  await side?.monitor.close();
  if (side) await dropTopology(side.prefix);
  await side?.db.drop();
}

/** The health row the monitor starts for an active key (activation seen). */
async function monitorActive(side: Side, tenantId: string): Promise<void> {
  const repository = side.monitor.app.get(ConnectionHealthRepository);
  await side.monitor.app.get(DataSource).transaction((tx) => repository.startMonitoringActive(tx, { tenantId }));
}

/** What the monitor wrote, with what is random (ids of its own events, incidents) or timed (since) left out. */
async function written(db: TestDatabase, tenants: string[]) {
  const q = <T>(sql: string) => db.query<T>(sql, [tenants]);
  return {
    health: await q(
      `SELECT tenant_id, credential_id, state, reason, auth_failures, last_auth_failure_at, incident_id IS NULL AS no_incident, revalidate_requested_at IS NULL AS not_asked
       FROM connection_health WHERE tenant_id = ANY($1) ORDER BY tenant_id`,
    ),
    failures: await q(`SELECT event_id, tenant_id, credential_id, status, counts_against_active, observed_at FROM auth_failures WHERE tenant_id = ANY($1) ORDER BY event_id`),
    events: await q(
      `SELECT tenant_id, event_type, (payload->'data') - 'since' AS data, payload->>'causationId' AS caused_by
       FROM outbox WHERE tenant_id = ANY($1) OR tenant_id = '_provider' ORDER BY tenant_id, event_type, payload->>'causationId'`,
    ),
    audit: await q(`SELECT tenant_id, action, credential_id, last4, details FROM audit_log WHERE tenant_id = ANY($1) ORDER BY tenant_id, seq`),
    inbox: await db.query(`SELECT event_id FROM inbox WHERE consumer = 'monitor' ORDER BY event_id`),
    incidents: await db.query(`SELECT reason, affected_tenants, closed_at IS NULL AS open FROM provider_incidents ORDER BY opened_at`),
  };
}

/** Reported at `at` seconds ago, so that order of observation is order of arrival. */
function failed(tenantId: string, at: number, status: 401 | 403 = 401, credentialId?: string): EventEnvelope<'auth.failed'> {
  return createEvent(
    'auth.failed',
    { tenantId, correlationId: `sync-${randomUUID()}`, producer: 'expense-sync' },
    { ...(credentialId ? { credentialId } : {}), status, source: 'expense-sync', endpoint: '/v1/expenses', observedAt: new Date(Date.now() - at * 1000).toISOString() },
  );
}

/** The event server's lock order: tenant by tenant, each tenant's events in arrival order. */
const inLockOrder = (events: EventEnvelope<'auth.failed'>[]) => [...events].sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));

async function oneByOne(side: Side, events: EventEnvelope<'auth.failed'>[]): Promise<AuthFailureResult[]> {
  const health = side.monitor.app.get(ConnectionHealthService);
  const results: AuthFailureResult[] = [];
  for (const event of events) results.push(await health.onAuthFailed(event));
  return results;
}

const together = (side: Side, events: EventEnvelope<'auth.failed'>[]) => side.monitor.app.get(AuthFailureBatchService).onAuthFailures(events);

describe('monitor: a batch of auth.failed decided together comes out as if decided one by one', () => {
  let alone: Side;
  let batched: Side;
  const run = randomBytes(3).toString('hex');
  const tenant = (k: number): SeededConnection => ({ tenantId: `b${run}-${k}`, credentialId: randomUUID(), companyId: randomUUID(), last4: randomBytes(2).toString('hex') });

  beforeAll(async () => {
    const env = { KEYWARD_PROVIDER_INCIDENT_MIN_TENANTS: '1000' };
    [alone, batched] = await Promise.all([startSide(env), startSide(env)]);
  });

  afterAll(async () => {
    await Promise.all([stopSide(alone), stopSide(batched)]);
  });

  it('mixed tenants, a threshold crossed mid-batch, a first 403, an old key, missing rows and duplicates', async () => {
    const crossing = tenant(0);
    const forbidden = tenant(1);
    const rotated = tenant(2);
    const replacement = { ...rotated, credentialId: randomUUID() };
    const unmonitored = tenant(3);
    const disabled = tenant(4);
    const repeated = tenant(5);
    const validated = tenant(6);
    const all = [crossing, forbidden, rotated, unmonitored, disabled, repeated, validated];
    const earlier = failed(repeated.tenantId, 90);

    for (const side of [alone, batched]) {
      for (const c of all) await seedActiveConnection(side.db, c);
      for (const c of [crossing, forbidden, rotated, repeated, validated]) await monitorActive(side, c.tenantId);
      // Rotation replaced the key; the monitor has not seen the activation yet (its row describes the old key).
      await replaceAsRotation(side.db, rotated.credentialId);
      await seedActiveConnection(side.db, replacement);
      await compromiseAsRotation(side.db, { tenantId: disabled.tenantId, credentialId: disabled.credentialId });
      await lastValidatedAsRotation(side.db, validated.tenantId, 30);
      await side.db.query(`UPDATE connection_health SET last_validated_at = now() - interval '30 seconds' WHERE tenant_id = $1`, [validated.tenantId]);
      // Handled before the batch: its redelivery in the batch is a duplicate.
      expect(await oneByOne(side, [earlier])).toEqual(['counted']);
    }

    const twice = failed(repeated.tenantId, 50);
    const events = inLockOrder([
      failed(crossing.tenantId, 60),
      failed(forbidden.tenantId, 60),
      failed(rotated.tenantId, 60, 401, rotated.credentialId),
      failed(unmonitored.tenantId, 60),
      failed(crossing.tenantId, 55, 401, crossing.credentialId),
      failed(disabled.tenantId, 55),
      failed(forbidden.tenantId, 55, 403, forbidden.credentialId),
      failed(rotated.tenantId, 55),
      earlier,
      twice,
      failed(validated.tenantId, 50, 403),
      failed(crossing.tenantId, 50),
      failed(unmonitored.tenantId, 50),
      failed(rotated.tenantId, 50),
      twice,
      failed(crossing.tenantId, 45),
      failed(forbidden.tenantId, 45),
      failed(rotated.tenantId, 45),
      failed(unmonitored.tenantId, 45),
      failed(crossing.tenantId, 40),
      failed(disabled.tenantId, 40),
      failed(repeated.tenantId, 40),
    ]);

    const expected = await oneByOne(alone, events);
    expect(await together(batched, events)).toEqual(expected);
    // What the scenario is about, as the one-event path decided it.
    const of = (c: SeededConnection) => expected.filter((_, i) => events[i].tenantId === c.tenantId);
    expect(of(crossing)).toEqual(['counted', 'counted', 'degraded', 'counted', 'counted']);
    expect(of(forbidden)).toEqual(['counted', 'degraded', 'counted']);
    expect(of(rotated)).toEqual(['not_counted', 'counted', 'counted', 'degraded']);
    expect(of(unmonitored)).toEqual(['counted', 'counted', 'degraded']);
    expect(of(disabled)).toEqual(['not_counted', 'not_counted']);
    expect(of(repeated)).toEqual(['duplicate', 'counted', 'duplicate', 'degraded']);
    expect(of(validated)).toEqual(['counted']);

    const ids = all.map((c) => c.tenantId);
    const [a, b] = [await written(alone.db, ids), await written(batched.db, ids)];
    expect(b).toEqual(a);
    // One incident each: one connection.degraded and one key.revalidate per degraded tenant, nothing for the others.
    const degradedEvents = b.events.filter((e) => (e as { event_type: string }).event_type === 'connection.degraded');
    expect(degradedEvents.map((e) => (e as { tenant_id: string }).tenant_id).sort()).toEqual([crossing, forbidden, rotated, unmonitored, repeated].map((c) => c.tenantId).sort());
  });
});

describe('monitor: a batch in which failures across tenants become a provider incident', () => {
  let alone: Side;
  let batched: Side;
  const run = randomBytes(3).toString('hex');

  beforeAll(async () => {
    // Incident at 3 tenants failing at once (the share of so few active tenants is smaller).
    const env = { KEYWARD_PROVIDER_INCIDENT_MIN_TENANTS: '3', KEYWARD_PROVIDER_INCIDENT_SHARE: '0.01' };
    [alone, batched] = await Promise.all([startSide(env), startSide(env)]);
  });

  afterAll(async () => {
    await Promise.all([stopSide(alone), stopSide(batched)]);
  });

  it('opens the incident at the same failure: the tenants before it degrade, those after it are held back', async () => {
    const tenants: SeededConnection[] = Array.from({ length: 6 }, (_, k) => ({
      tenantId: `p${run}-${k}`,
      credentialId: randomUUID(),
      companyId: randomUUID(),
      last4: randomBytes(2).toString('hex'),
    }));
    const before = failed(tenants[5].tenantId, 120);
    for (const side of [alone, batched]) {
      for (const c of tenants) {
        await seedActiveConnection(side.db, c);
        await monitorActive(side, c.tenantId);
      }
      // One tenant was failing already (below its threshold).
      expect(await oneByOne(side, [before])).toEqual(['counted']);
    }
    const events = inLockOrder(tenants.flatMap((c, k) => [failed(c.tenantId, 60 - k, 403, c.credentialId), failed(c.tenantId, 30 - k)]));

    const expected = await oneByOne(alone, events);
    expect(await together(batched, events)).toEqual(expected);
    expect(expected).toEqual(['degraded', 'counted', 'suppressed_by_provider_incident', 'suppressed_by_provider_incident', ...Array<string>(8).fill('suppressed_by_provider_incident')]);
    const ids = tenants.map((c) => c.tenantId);
    const [a, b] = [await written(alone.db, ids), await written(batched.db, ids)];
    expect(b).toEqual(a);
    expect(b.incidents).toEqual([{ reason: 'auth_failures_across_tenants', affected_tenants: 3, open: true }]);
  });
});

describe('monitor: a burst of auth.failed through the broker', () => {
  let db: TestDatabase;
  let prefix: string;
  let monitor: MonitorInstance;
  let tap: EventTap;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    tap = await new EventTap(prefix).start();
    monitor = await startMonitor(db, prefix, { KEYWARD_PROVIDER_INCIDENT_MIN_TENANTS: '1000' });
  });

  afterAll(async () => {
    await monitor?.close();
    await tap?.stop();
    await dropTopology(prefix);
    await db?.drop();
  });

  it('degrades each tenant once and revalidates its key once, however the burst is grouped, with redelivered copies changing nothing', async () => {
    const tenants: SeededConnection[] = [];
    for (let i = 0; i < 4; i++) tenants.push(await seedActiveConnection(db));
    const quiet = await seedActiveConnection(db);
    const burst = tenants.flatMap((c) => Array.from({ length: 6 }, (_, k) => failed(c.tenantId, 60 - k)));
    burst.push(failed(quiet.tenantId, 30), failed(quiet.tenantId, 20));
    const connection = await connectTestBroker();
    const channel = await connection.createConfirmChannel();
    // One burst, interleaved across tenants, every tenant's first three events sent twice.
    const copies = [...burst, ...burst.filter((_, i) => i % 6 < 3)].sort(() => Math.random() - 0.5);
    for (const event of copies) channel.publish(`${prefix}.events`, event.type, Buffer.from(JSON.stringify(event)), { persistent: true, messageId: event.id });
    await channel.waitForConfirms();
    await connection.close();

    await eventually(
      async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM auth_failures WHERE tenant_id = ANY($1)`, [[...tenants, quiet].map((c) => c.tenantId)]))[0].n) === burst.length,
      20_000,
      'every failure recorded',
    );
    for (const c of tenants) await tap.waitFor('connection.degraded', (e) => e.tenantId === c.tenantId);
    await sleep(500);
    for (const c of tenants) {
      expect(tap.ofType('connection.degraded', c.tenantId)).toHaveLength(1);
      expect(tap.ofType('key.revalidate', c.tenantId)).toHaveLength(1);
      expect(await health(db, c.tenantId)).toMatchObject({ state: 'degraded', auth_failures: 6 });
    }
    expect(tap.ofType('connection.degraded', quiet.tenantId)).toHaveLength(0);
    expect(await health(db, quiet.tenantId)).toMatchObject({ state: 'healthy', auth_failures: 2 });
    const [{ n }] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM inbox WHERE consumer = 'monitor' AND event_id = ANY($1::uuid[])`, [burst.map((e) => e.id)]);
    expect(Number(n)).toBe(burst.length);
  });
});
