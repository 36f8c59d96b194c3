import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Controller, INestApplication, Inject, Module } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import { ServiceDefinition } from '@keyward/bootstrap';
import { AnyEvent, createEvent, EventEnvelope } from '@keyward/contracts';
import { Metrics } from '@keyward/observability';
import { captureLogs, connectTestBroker, createTestDatabase, dropTopology, EventTap, eventually, publishExternal, startTestService, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { AmqpConnection } from './amqp-connection';
import { AmqpEventContext, ATTEMPT_HEADER } from './event-server';
import { Inbox } from './inbox';
import { Redeliveries } from './redeliveries';
import { Outbox } from './outbox';
import { OutboxRelay } from './outbox-relay';
import { replayParked } from './parked-events';
import { REDELIVERY_ROUTES, TopologyNames } from './topology';

const origin = (tenantId: string) => ({ tenantId, correlationId: `corr-${randomUUID()}`, producer: 'monitor' });
const revalidate = (tenantId: string) => createEvent('key.revalidate', origin(tenantId), { credentialId: randomUUID(), reason: 'manual' });

/** What the test handler does with each event, by tenant id. */
const behaviour = new Map<string, 'ok' | 'fail' | 'fail-once' | 'outage'>();
const calls: { eventId: string; attempt: number; at: number }[] = [];

@Controller()
class RecordingHandler {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  @EventPattern('key.revalidate')
  async onRevalidate(@Payload() event: EventEnvelope<'key.revalidate'>, @Ctx() ctx: AmqpEventContext): Promise<void> {
    calls.push({ eventId: event.id, attempt: ctx.delivery.attempt, at: Date.now() });
    if (behaviour.get(event.tenantId) === 'fail') throw new Error('handler refuses this tenant');
    if (behaviour.get(event.tenantId) === 'fail-once' && ctx.delivery.attempt === 1) throw new Error('handler refuses this tenant once');
    if (behaviour.get(event.tenantId) === 'outage' && ctx.delivery.attempt <= 4) {
      // What pg throws while Postgres is down.
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    }
    await Inbox.runOnce(this.dataSource, 'validator', event, async (tx) => {
      // The side effect under test: one audit-free row per processed event.
      await tx.query(`INSERT INTO rate_limit_windows (bucket, window_start, hits) VALUES ($1, now(), 1)`, [`side-effect:${event.id}`]);
    });
  }
}

@Module({ controllers: [RecordingHandler] })
class RecordingModule {}

describe('messaging: outbox, relay, consumer', () => {
  let db: TestDatabase;
  let prefix: string;
  let app: INestApplication;
  let tap: EventTap;
  const logs = captureLogs('messaging-test');
  const definition: ServiceDefinition = { module: RecordingModule, consumes: 'validator', retry: { tiersMs: [300, 600] } };

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    const config = testConfig('validator', { databaseUrl: db.url, prefix });
    app = await startTestService(definition, config, logs.logger);
    tap = await new EventTap(prefix).start();
  });

  afterAll(async () => {
    await tap?.stop();
    await app?.close();
    await dropTopology(prefix);
    await db?.drop();
  });

  const dataSource = () => app.get(DataSource);
  const sideEffects = async (eventId: string) => (await db.query<{ n: string }>(`SELECT count(*) AS n FROM rate_limit_windows WHERE bucket = $1`, [`side-effect:${eventId}`]))[0].n;

  it('publishes nothing from a rolled-back transaction and exactly the events of a committed one', async () => {
    const tenant = `t-${randomUUID()}`;
    const committed = [revalidate(tenant), revalidate(tenant)];
    const rolledBack = revalidate(tenant);
    await dataSource()
      .transaction(async (tx) => {
        await Outbox.stage(tx, rolledBack);
        throw new Error('business rule failed');
      })
      .catch(() => undefined);
    await dataSource().transaction((tx) => Outbox.stage(tx, ...committed));

    await eventually(() => tap.ofType('key.revalidate', tenant).length === 2, 10_000, 'two committed events');
    await new Promise((r) => setTimeout(r, 500));
    expect(
      tap
        .ofType('key.revalidate', tenant)
        .map((e) => e.id)
        .sort(),
    ).toEqual(committed.map((e) => e.id).sort());
    const rows = await db.query<{ id: string; published_at: Date | null }>(`SELECT id, published_at FROM outbox WHERE tenant_id = $1`, [tenant]);
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.published_at !== null)).toBe(true);
  });

  it('refuses to stage an event with an unknown field, and stores nothing', async () => {
    const tenant = `t-${randomUUID()}`;
    const event = { ...revalidate(tenant), data: { credentialId: randomUUID(), reason: 'manual', apiKey: 'pleo_canary_x' } } as unknown as AnyEvent;
    await expect(dataSource().transaction((tx) => Outbox.stage(tx, event))).rejects.toThrow(/data: unrecognized_keys \(1 field\)/);
    expect(await db.query(`SELECT 1 FROM outbox WHERE tenant_id = $1`, [tenant])).toHaveLength(0);
  });

  it('keeps relaying after the broker drops the connection, losing no committed event', async () => {
    const tenant = `t-${randomUUID()}`;
    const before = Array.from({ length: 20 }, () => revalidate(tenant));
    await dataSource().transaction((tx) => Outbox.stage(tx, ...before));
    await eventually(() => tap.ofType('key.revalidate', tenant).length === 20, 10_000, 'first batch');

    // Close the service's broker connections from the broker side, as a broker restart would.
    const list = execFileSync('rabbitmqctl', ['list_connections', 'pid', 'client_properties', '-q'], { encoding: 'utf8' });
    const ours = list
      .split('\n')
      .filter((line) => line.includes(`keyward-validator@${prefix}`))
      .map((line) => line.split('\t')[0]);
    expect(ours.length).toBeGreaterThan(0);
    for (const pid of ours) execFileSync('rabbitmqctl', ['close_connection', pid, 'test: simulated broker restart']);

    const during = Array.from({ length: 20 }, () => revalidate(tenant));
    await dataSource().transaction((tx) => Outbox.stage(tx, ...during));
    await eventually(() => tap.ofType('key.revalidate', tenant).length >= 40, 30_000, 'events committed while disconnected');
    const seen = new Set(tap.ofType('key.revalidate', tenant).map((e) => e.id));
    for (const e of [...before, ...during]) expect(seen.has(e.id)).toBe(true);
    expect(app.get(AmqpConnection).connected).toBe(true);
    // The consumer came back too: every event was handled.
    await eventually(async () => (await Promise.all([...before, ...during].map((e) => sideEffects(e.id)))).every((n) => n === '1'), 30_000, 'all handled');
  });

  it('treats an unroutable return as a failure: the row stays unpublished', async () => {
    const relay = app.get(OutboxRelay);
    await relay.stop();
    const tenant = `t-${randomUUID()}`;
    const event = revalidate(tenant);
    const admin = await connectTestBroker();
    const channel = await admin.createChannel();
    const queue = `${prefix}.validator`;
    await channel.unbindQueue(queue, `${prefix}.events`, 'key.revalidate');
    await tap.pause();
    try {
      await dataSource().transaction((tx) => Outbox.stage(tx, event));
      await relay.relayOnce();
      const [row] = await db.query<{ published_at: Date | null; last_error: string; attempts: number }>(`SELECT published_at, last_error, attempts FROM outbox WHERE id = $1`, [event.id]);
      expect(row).toMatchObject({ published_at: null, last_error: 'unroutable', attempts: 1 });
    } finally {
      await channel.bindQueue(queue, `${prefix}.events`, 'key.revalidate');
      await tap.resume();
      await admin.close();
      relay.start();
    }
    await db.query(`UPDATE outbox SET available_at = now() WHERE id = $1`, [event.id]);
    await eventually(() => tap.ofType('key.revalidate', tenant).length === 1, 10_000, 'the event after its route came back');
  });

  it('retries a failing handler after a delay, then parks the event with its headers and body', async () => {
    const tenant = `t-${randomUUID()}`;
    behaviour.set(tenant, 'fail');
    const event = revalidate(tenant);
    const published = Date.now();
    await publishExternal(prefix, event);

    const parkedConnection = await connectTestBroker();
    const channel = await parkedConnection.createChannel();
    const parked = await eventually(
      async () => {
        const msg = await channel.get(`${prefix}.validator.parked`, { noAck: true });
        return msg === false ? undefined : msg;
      },
      20_000,
      'parked message',
    );
    const attempts = calls.filter((c) => c.eventId === event.id);
    expect(attempts.map((c) => c.attempt)).toEqual([1, 2, 3]);
    // Two delays (300 ms, 600 ms) passed before the last attempt.
    expect(Date.now() - published).toBeGreaterThanOrEqual(900);
    expect(JSON.parse(parked.content.toString())).toEqual(event);
    expect(parked.properties.messageId).toBe(event.id);
    expect(parked.properties.headers?.[ATTEMPT_HEADER]).toBe(3);
    expect(String(parked.properties.headers?.['x-keyward-last-error'])).toContain('handler refuses this tenant');
    await parkedConnection.close();
    expect(await sideEffects(event.id)).toBe('0');
  });

  it('schedules a retry in Postgres before acking, with keyward headers only and no queue per delay', async () => {
    const tenant = `t-${randomUUID()}`;
    behaviour.set(tenant, 'fail');
    const event = revalidate(tenant);
    const connection = await connectTestBroker();
    const channel = await connection.createConfirmChannel();
    // A header another publisher set must not ride along on the retry copy.
    channel.publish(`${prefix}.events`, event.type, Buffer.from(JSON.stringify(event)), {
      persistent: true,
      messageId: event.id,
      headers: { 'x-foreign': 'pleo_canary_in_header' },
    });
    await channel.waitForConfirms();
    const [row] = await eventually(
      async () => {
        const rows = await db.query<{ subscriber: string; attempt: number; headers: Record<string, unknown>; last_error: string; payload: unknown }>(
          `SELECT subscriber, attempt, headers, last_error, payload FROM scheduled_retries WHERE event_id = $1`,
          [event.id],
        );
        return rows.length > 0 ? rows : undefined;
      },
      10_000,
      'a scheduled retry row',
    );
    expect(row.subscriber).toBe('validator');
    expect(row.attempt).toBe(1);
    expect(row.payload).toEqual(event);
    expect(row.last_error).toContain('handler refuses this tenant');
    expect(Object.keys(row.headers).every((h) => h.startsWith('x-keyward-'))).toBe(true);
    // The broker holds no delay queue for this subscriber any more.
    const probe = await connection.createChannel();
    probe.on('error', () => undefined);
    await expect(probe.checkQueue(`${prefix}.validator.retry.300ms`)).rejects.toThrow(/NOT_FOUND/);
    const parked = await eventually(
      async () => {
        const msg = await channel.get(`${prefix}.validator.parked`, { noAck: true });
        return msg === false ? undefined : msg;
      },
      20_000,
      'parked after the tiers',
    );
    expect(parked.properties.messageId).toBe(event.id);
    expect(JSON.stringify(parked.properties.headers)).not.toContain('pleo_canary_in_header');
    await connection.close();
  });

  it('does not lose a retry whose target queue is missing: it waits in Postgres until the route is back', async () => {
    const tenant = `t-${randomUUID()}`;
    behaviour.set(tenant, 'fail');
    const event = revalidate(tenant);
    const names = new TopologyNames(prefix);
    const admin = await connectTestBroker();
    const channel = await admin.createChannel();
    // The route from the validator's redelivery exchange to its queue is gone (deleted by mistake).
    await channel.unbindQueue(names.queue('validator'), names.redeliveryExchange('validator'), REDELIVERY_ROUTES.retry);
    try {
      await publishExternal(prefix, event);
      await eventually(
        async () => {
          const [row] = await db.query<{ relay_error: string | null }>(`SELECT relay_error FROM scheduled_retries WHERE event_id = $1`, [event.id]);
          return row?.relay_error === 'unroutable';
        },
        15_000,
        'the retry returned as unroutable and kept',
      );
      expect(calls.filter((c) => c.eventId === event.id).map((c) => c.attempt)).toEqual([1]);
      expect(logs.text()).toContain('Retry was unroutable');
    } finally {
      await channel.bindQueue(names.queue('validator'), names.redeliveryExchange('validator'), REDELIVERY_ROUTES.retry);
    }
    behaviour.set(tenant, 'ok');
    await db.query(`UPDATE scheduled_retries SET due_at = now() WHERE event_id = $1`, [event.id]);
    await eventually(async () => (await sideEffects(event.id)) === '1', 15_000, 'the retry delivered once the route was back');
    expect(calls.filter((c) => c.eventId === event.id).map((c) => c.attempt)).toEqual([1, 2]);
    await admin.close();
  });

  it('does not lose an event whose parking queue is missing: it is kept in Postgres and parked once the queue is back', async () => {
    const tenant = `t-${randomUUID()}`;
    behaviour.set(tenant, 'fail');
    const event = revalidate(tenant);
    const names = new TopologyNames(prefix);
    const admin = await connectTestBroker();
    const channel = await admin.createChannel();
    await channel.unbindQueue(names.parkedQueue('validator'), names.redeliveryExchange('validator'), REDELIVERY_ROUTES.parked);
    try {
      await publishExternal(prefix, event);
      await eventually(() => logs.text().includes('Parking queue is missing; event kept instead of parked') || undefined, 20_000, 'the park refused');
      // Meanwhile it waits in Postgres (the slowest tier), not in the broker.
      await eventually(async () => (await db.query(`SELECT 1 FROM scheduled_retries WHERE event_id = $1`, [event.id])).length === 1, 10_000, 'kept in Postgres');
    } finally {
      await channel.bindQueue(names.parkedQueue('validator'), names.redeliveryExchange('validator'), REDELIVERY_ROUTES.parked);
    }
    await db.query(`UPDATE scheduled_retries SET due_at = now() WHERE event_id = $1`, [event.id]);
    const parked = await eventually(
      async () => {
        const msg = await channel.get(names.parkedQueue('validator'), { noAck: true });
        return msg === false ? undefined : msg;
      },
      20_000,
      'parked once the queue was back',
    );
    expect(parked.properties.messageId).toBe(event.id);
    await admin.close();
  });

  it('keeps an event through a dependency outage longer than its retry tiers, then handles it', async () => {
    const tenant = `t-${randomUUID()}`;
    behaviour.set(tenant, 'outage');
    const event = revalidate(tenant);
    await publishExternal(prefix, event);
    await eventually(async () => (await sideEffects(event.id)) === '1', 20_000, 'handled once the outage ended');
    // Two tiers (300 ms, 600 ms) would park a failing event after its third attempt.
    expect(calls.filter((c) => c.eventId === event.id).map((c) => c.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(logs.text()).toContain('A dependency is unavailable; event kept and retried after a delay');
  });

  it('sleeps while no retry waits, sends a retry when it is due, and takes one another replica scheduled', async () => {
    const waiting = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM scheduled_retries WHERE subscriber = 'validator'`))[0].n);
    await eventually(async () => (await waiting()) === 0, 20_000, 'no retry left from earlier cases');
    // Idle: the relay looks at the index now and then, and claims (a transaction) nothing.
    const claims = jest.spyOn(dataSource(), 'transaction');
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      expect(claims).not.toHaveBeenCalled();
    } finally {
      claims.mockRestore();
    }

    // A retry this replica schedules wakes its relay: it goes out at its due time (300 ms), not at the next look (5 s).
    const tenant = `t-${randomUUID()}`;
    behaviour.set(tenant, 'fail-once');
    const event = revalidate(tenant);
    await publishExternal(prefix, event);
    await eventually(async () => (await sideEffects(event.id)) === '1', 10_000, 'handled on its retry');
    const [first, second] = calls.filter((c) => c.eventId === event.id);
    expect([first.attempt, second.attempt]).toEqual([1, 2]);
    expect(second.at - first.at).toBeGreaterThanOrEqual(290); // not before its tier (timers may fire a millisecond early)
    expect(second.at - first.at).toBeLessThan(3_000);

    // One another replica scheduled (and then stopped) is found at the relay's next look.
    const orphan = revalidate(`t-${randomUUID()}`);
    await db.query(
      `INSERT INTO scheduled_retries (subscriber, event_id, event_type, tenant_id, payload, headers, attempt, last_error, due_at)
       VALUES ('validator', $1, $2, $3, $4::jsonb, '{"x-keyward-attempt": 2}'::jsonb, 1, 'failed on another replica', now())`,
      [orphan.id, orphan.type, orphan.tenantId, JSON.stringify(orphan)],
    );
    await eventually(async () => (await sideEffects(orphan.id)) === '1', 10_000, "the other replica's retry handled");
    expect(await waiting()).toBe(0);
  });

  it('applies the side effects of an event delivered twice only once', async () => {
    const tenant = `t-${randomUUID()}`;
    const event = revalidate(tenant);
    await publishExternal(prefix, event);
    await publishExternal(prefix, event);
    await eventually(() => calls.filter((c) => c.eventId === event.id).length === 2, 10_000, 'both deliveries');
    expect(await sideEffects(event.id)).toBe('1');
  });

  it('parks an unreadable message at once without calling a handler', async () => {
    const connection = await connectTestBroker();
    const channel = await connection.createConfirmChannel();
    channel.publish(`${prefix}.events`, 'key.revalidate', Buffer.from('{"type":"key.revalidate","nonsense":true}'), { persistent: true, messageId: 'garbage-1' });
    await channel.waitForConfirms();
    const parked = await eventually(
      async () => {
        const msg = await channel.get(`${prefix}.validator.parked`, { noAck: true });
        if (msg !== false && msg.properties.messageId !== 'garbage-1')
          throw new Error(`unexpected parked message ${msg.properties.messageId} ${msg.content.toString()} ${JSON.stringify(msg.properties.headers)}`);
        return msg === false ? undefined : msg;
      },
      10_000,
      'parked garbage',
    );
    expect(parked.properties.messageId).toBe('garbage-1');
    await connection.close();
  });

  it('replays a parked event for an operator: listed first, then handled once with a fresh retry budget', async () => {
    const tenant = `t-${randomUUID()}`;
    behaviour.set(tenant, 'fail');
    const event = revalidate(tenant);
    await publishExternal(prefix, event);
    const connection = await connectTestBroker();
    const channel = await connection.createConfirmChannel();
    const names = new TopologyNames(prefix);
    await eventually(async () => (await channel.checkQueue(names.parkedQueue('validator'))).messageCount === 1, 20_000, 'parked');

    const listed = await replayParked(channel, names, 'validator', { limit: 10, dryRun: true });
    expect(listed.map((e) => [e.messageId, e.attempts])).toEqual([[event.id, 3]]);
    expect(listed[0].lastError).toContain('handler refuses this tenant');
    expect((await channel.checkQueue(names.parkedQueue('validator'))).messageCount).toBe(1);

    behaviour.set(tenant, 'ok'); // the operator fixed the cause
    const moved = await replayParked(channel, names, 'validator', { limit: 10 });
    expect(moved).toHaveLength(1);
    await eventually(async () => (await sideEffects(event.id)) === '1', 10_000, 'the replayed event handled');
    expect(calls.filter((c) => c.eventId === event.id).at(-1)?.attempt).toBe(1);
    expect((await channel.checkQueue(names.parkedQueue('validator'))).messageCount).toBe(0);
    await connection.close();
  });

  it('counts unreadable messages under one bounded label whatever type a publisher claims, and never logs their field names', async () => {
    const connection = await connectTestBroker();
    const channel = await connection.createConfirmChannel();
    const names = new TopologyNames(prefix);
    const hiddenKey = `pleo_canary_${randomUUID().replace(/-/g, '')}`;
    const n = 300;
    for (let i = 0; i < n; i++) {
      const body = { ...revalidate(`t-${randomUUID()}`), [hiddenKey]: true };
      channel.publish(names.exchange, 'key.revalidate', Buffer.from(JSON.stringify(body)), { persistent: true, type: `random-${randomUUID()}` });
    }
    await channel.waitForConfirms();
    const metrics = app.get(Metrics);
    const invalid = async () => (await metrics.registry.getSingleMetric('keyward_events_consumed_total')!.get()).values.filter((v) => v.labels.outcome === 'invalid');
    await eventually(async () => (await invalid()).reduce((sum, v) => sum + v.value, 0) >= n, 30_000, 'all unreadable messages handled');
    expect((await invalid()).map((v) => v.labels.type)).toEqual(['unreadable']);
    expect(logs.text()).not.toContain(hiddenKey);
    await channel.purgeQueue(names.parkedQueue('validator'));
    await connection.close();
  });

  it('prunes inbox rows past the retention, for its own consumer only', async () => {
    const old = randomUUID();
    const recent = randomUUID();
    const others = randomUUID();
    await db.query(
      `INSERT INTO inbox (consumer, event_id, event_type, processed_at) VALUES
         ('validator', $1, 'key.revalidate', now() - interval '20 days'),
         ('validator', $2, 'key.revalidate', now() - interval '2 days'),
         ('rotation', $3, 'key.validated', now() - interval '20 days')`,
      [old, recent, others],
    );
    expect(await Inbox.prune(dataSource(), 'validator', 14)).toBeGreaterThanOrEqual(1);
    const left = (await db.query<{ event_id: string }>(`SELECT event_id FROM inbox WHERE event_id = ANY($1::uuid[])`, [[old, recent, others]])).map((r) => r.event_id);
    expect(left.sort()).toEqual([recent, others].sort());
  });

  it('counts unsettled deliveries per consumer, and prunes counts untouched past the retention, for its own consumer only', async () => {
    const [old, recent, others] = [randomUUID(), randomUUID(), randomUUID()];
    expect(await Redeliveries.count(dataSource(), 'validator', recent)).toBe(1);
    expect(await Redeliveries.count(dataSource(), 'validator', recent)).toBe(2);
    await db.query(
      `INSERT INTO redeliveries (consumer, event_id, deliveries, last_delivered_at) VALUES
         ('validator', $1, 3, now() - interval '20 days'), ('rotation', $2, 3, now() - interval '20 days')`,
      [old, others],
    );
    expect(await Redeliveries.prune(dataSource(), 'validator', 14)).toBeGreaterThanOrEqual(1);
    const left = (await db.query<{ event_id: string }>(`SELECT event_id FROM redeliveries WHERE event_id = ANY($1::uuid[])`, [[old, recent, others]])).map((r) => r.event_id);
    expect(left.sort()).toEqual([recent, others].sort());
  });
});

describe('messaging: batched consumption', () => {
  let db: TestDatabase;
  let prefix: string;
  let app: INestApplication;
  const logs = captureLogs('messaging-batch-test');

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    const config = testConfig('validator', { databaseUrl: db.url, prefix });
    const definition: ServiceDefinition = {
      module: RecordingModule,
      consumes: 'validator',
      retry: { tiersMs: [300, 600] },
      batch: { consumer: 'validator', maxSize: 10, maxConcurrent: 2 },
    };
    app = await startTestService(definition, config, logs.logger);
  });

  afterAll(async () => {
    await app?.close();
    await dropTopology(prefix);
    await db?.drop();
  });

  const sideEffects = async (eventId: string) => (await db.query<{ n: string }>(`SELECT count(*) AS n FROM rate_limit_windows WHERE bucket = $1`, [`side-effect:${eventId}`]))[0].n;

  it('handles a burst with duplicates and one failing event: every good event once, the bad one retried then parked', async () => {
    const good = Array.from({ length: 40 }, () => revalidate(`t-${randomUUID()}`));
    const badTenant = `t-${randomUUID()}`;
    behaviour.set(badTenant, 'fail');
    const bad = revalidate(badTenant);
    const connection = await connectTestBroker();
    const channel = await connection.createConfirmChannel();
    // One burst: the events, a duplicate of ten of them, and the failing one in the middle.
    for (const event of [...good.slice(0, 20), bad, ...good.slice(20), ...good.slice(0, 10)]) {
      channel.publish(`${prefix}.events`, event.type, Buffer.from(JSON.stringify(event)), { persistent: true, messageId: event.id });
    }
    await channel.waitForConfirms();

    await eventually(async () => (await Promise.all(good.map((e) => sideEffects(e.id)))).every((n) => n === '1'), 20_000, 'every good event handled');
    const parked = await eventually(
      async () => {
        const msg = await channel.get(`${prefix}.validator.parked`, { noAck: true });
        return msg === false ? undefined : msg;
      },
      20_000,
      'the failing event parked',
    );
    expect(parked.properties.messageId).toBe(bad.id);
    expect(
      calls
        .filter((c) => c.eventId === bad.id)
        .map((c) => c.attempt)
        .slice(-3),
    ).toEqual([1, 2, 3]);
    expect(await sideEffects(bad.id)).toBe('0');
    // Duplicates changed nothing, and the inbox holds each event once.
    expect((await Promise.all(good.map((e) => sideEffects(e.id)))).every((n) => n === '1')).toBe(true);
    const [{ n }] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM inbox WHERE event_id = ANY($1::uuid[])`, [good.map((e) => e.id)]);
    expect(n).toBe('40');
    await connection.close();
  });
});
