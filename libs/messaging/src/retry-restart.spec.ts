import { randomUUID } from 'node:crypto';
import { Controller, INestApplication, Inject, Module } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { connect } from 'amqplib';
import { DataSource } from 'typeorm';
import { ServiceDefinition } from '@keyward/bootstrap';
import { createEvent, EventEnvelope } from '@keyward/contracts';
import { captureLogs, createTestDatabase, eventually, PrivateBroker, startPrivateBroker, startTestService, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { AmqpEventContext } from './event-server';
import { Inbox } from './inbox';
import { Outbox } from './outbox';
import { declareTopology, TopologyNames } from './topology';

/**
 * Issue 11, reproduced on a broker of the test's own: events wait in delayed retry while the
 * broker is stopped past their due time and started again. With per-delay TTL queues they were
 * all lost; now every one is delivered, once.
 */
const calls: { eventId: string; attempt: number }[] = [];

@Controller()
class FailsOnceHandler {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  @EventPattern('key.revalidate')
  async onRevalidate(@Payload() event: EventEnvelope<'key.revalidate'>, @Ctx() ctx: AmqpEventContext): Promise<void> {
    calls.push({ eventId: event.id, attempt: ctx.delivery.attempt });
    // Pleo answering 503 on the first try of every event.
    if (ctx.delivery.attempt === 1) throw new Error('upstream 503');
    await Inbox.runOnce(this.dataSource, 'validator', event, async (tx) => {
      await tx.query(`INSERT INTO rate_limit_windows (bucket, window_start, hits) VALUES ($1, now(), 1)`, [`handled:${event.id}`]);
    });
  }
}

@Module({ controllers: [FailsOnceHandler] })
class FailsOnceModule {}

const revalidate = (tenantId: string) => createEvent('key.revalidate', { tenantId, correlationId: `corr-${randomUUID()}`, producer: 'monitor' }, { credentialId: randomUUID(), reason: 'manual' });

describe('delayed retries across a full broker stop and start (issue 11)', () => {
  jest.setTimeout(300_000);
  let broker: PrivateBroker;
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;
  const logs = captureLogs('retry-restart-test');
  const legacy: string[] = [];

  beforeAll(async () => {
    broker = await startPrivateBroker({ name: 'kwretry' });
    db = await createTestDatabase();
    prefix = testPrefix();

    // A broker upgraded from the previous version still has a per-delay retry queue with events in it.
    const names = new TopologyNames(prefix);
    const connection = await connect(broker.url);
    const channel = await connection.createConfirmChannel();
    await declareTopology(connection, names, 'quorum');
    await channel.assertQueue(`${prefix}.validator.retry.1000ms`, {
      durable: true,
      arguments: { 'x-queue-type': 'classic', 'x-message-ttl': 1000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': names.queue('validator') },
    });
    for (let i = 0; i < 3; i++) {
      const event = revalidate(`legacy-${i}`);
      legacy.push(event.id);
      channel.sendToQueue(`${prefix}.validator.retry.1000ms`, Buffer.from(JSON.stringify(event)), {
        persistent: true,
        messageId: event.id,
        headers: { 'x-keyward-attempt': 1 },
      });
    }
    await channel.waitForConfirms();
    await connection.close();

    const definition: ServiceDefinition = { module: FailsOnceModule, consumes: 'validator', retry: { tiersMs: [2_000] } };
    app = await startTestService(definition, testConfig('validator', { databaseUrl: db.url, prefix, AMQP_URL: broker.url }), logs.logger);
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
    await broker?.shutdown();
  });

  const handled = async (ids: string[]) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM rate_limit_windows WHERE bucket = ANY($1)`, [ids.map((id) => `handled:${id}`)]))[0].n);

  it('starts on a broker that still has the old delay queues, and the events in them are handled', async () => {
    await eventually(async () => (await handled(legacy)) === 3, 60_000, 'the three legacy events handled');
  });

  it('delivers every event that waited in delayed retry while the broker was stopped and started, each once', async () => {
    const events = Array.from({ length: 40 }, (_, i) => revalidate(`tenant-${i}`));
    const ids = events.map((e) => e.id);
    await app.get(DataSource).transaction((tx) => Outbox.stage(tx, ...events));
    // All 40 failed once and now wait for their retry.
    await eventually(
      async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM scheduled_retries WHERE event_id = ANY($1::uuid[])`, [ids]))[0].n) === 40,
      60_000,
      'forty retries scheduled',
    );

    // Stopped past their due time (2 s), then started again.
    await broker.stop();
    await new Promise((r) => setTimeout(r, 5_000));
    await broker.start();

    await eventually(async () => (await handled(ids)) === 40, 120_000, 'all forty handled after the restart');
    for (const id of ids) expect(calls.filter((c) => c.eventId === id).map((c) => c.attempt)).toEqual([1, 2]);
    expect(await db.query(`SELECT 1 FROM scheduled_retries WHERE event_id = ANY($1::uuid[])`, [ids])).toHaveLength(0);
  });

  it('also keeps them through a restart of the whole broker node', async () => {
    const events = Array.from({ length: 10 }, (_, i) => revalidate(`node-${i}`));
    const ids = events.map((e) => e.id);
    await app.get(DataSource).transaction((tx) => Outbox.stage(tx, ...events));
    await eventually(
      async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM scheduled_retries WHERE event_id = ANY($1::uuid[])`, [ids]))[0].n) === 10,
      60_000,
      'ten retries scheduled',
    );
    await broker.restartNode(3_000);
    await eventually(async () => (await handled(ids)) === 10, 120_000, 'all ten handled after the node restart');
  });
});
