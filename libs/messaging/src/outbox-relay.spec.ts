import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { createEvent } from '@keyward/contracts';
import { Metrics } from '@keyward/observability';
import { createDataSource, pipelinedIn } from '@keyward/persistence';
import { captureLogs, createTestDatabase, dropTopology, EventTap, eventually, TestDatabase, testAmqpUrl, testPrefix } from '@keyward/testing';
import { AmqpConnection } from './amqp-connection';
import { CommittedEvents, Outbox, WRITER_GRACE_SECONDS } from './outbox';
import { OutboxRelay } from './outbox-relay';

/**
 * Which relay wakes for a commit (ADR 0048): the one of the service that wrote it; another
 * service's relay leaves it, and takes it on its poll only if it stays.
 */
describe('outbox relay: woken by its own service commits', () => {
  const logs = captureLogs('outbox-relay-test');
  let db: TestDatabase;
  let prefix: string;
  let tap: EventTap;
  const open: { close(): Promise<unknown> }[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    tap = await new EventTap(prefix).start();
  });
  afterAll(async () => {
    for (const o of open.reverse()) await o.close().catch(() => undefined);
    await tap?.stop();
    await dropTopology(prefix);
    await db?.drop();
  });

  /** A service's pool, named as PersistenceModule names it. */
  async function pool(applicationName: string): Promise<DataSource> {
    const dataSource = await createDataSource({ url: db.url, poolSize: 2, applicationName }).initialize();
    open.push({ close: () => dataSource.destroy() });
    return dataSource;
  }

  /** A service's relay, with a poll far beyond the test: only notifications wake it. */
  async function relay(application: string, pollIntervalMs = 600_000): Promise<{ relay: OutboxRelay; dataSource: DataSource; published: () => Promise<number> }> {
    const amqp = new AmqpConnection({ url: testAmqpUrl(), prefix, logger: logs.logger, name: `relay-test-${application}` });
    await amqp.start();
    const metrics = new Metrics(application);
    const dataSource = await pool(application);
    const started = new OutboxRelay(dataSource, amqp, db.url, logs.logger, metrics, { application, pollIntervalMs });
    started.start();
    open.push({ close: () => started.stop() }, { close: () => amqp.close() });
    const published = async () => (await metrics.registry.getSingleMetric('keyward_outbox_published_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    return { relay: started, dataSource, published };
  }

  const stage = (writer: DataSource, tenant: string) =>
    writer.transaction((tx) =>
      Outbox.stage(tx, createEvent('key.revalidate', { tenantId: tenant, correlationId: randomUUID(), producer: 'monitor' }, { credentialId: randomUUID(), reason: 'probe' })),
    );

  it('polls with one look, claiming nothing, while nothing is due, and claims a row its look finds', async () => {
    const polling = await relay('keyward-monitor', 100);
    const claims = jest.spyOn(polling.relay, 'relayOnce');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(claims).not.toHaveBeenCalled(); // ten polls, each one look (no transaction)
    // Another service's commit wakes only its own relay (gone here): this one's look finds the row.
    const tenant = `t-${randomUUID()}`;
    await stage(await pool('keyward-intake'), tenant);
    await eventually(async () => (await polling.published()) === 1, 5_000, 'claimed and confirmed after a look');
    expect(claims).toHaveBeenCalled();
    expect(tap.ofType('key.revalidate', tenant)).toHaveLength(1);
    await polling.relay.stop(); // its polls would take the rows the next cases leave to other relays
  });

  it('publishes a commit with the writing service relay; the others stay asleep, and a commit of no service wakes them all', async () => {
    const intake = await relay('keyward-intake');
    const validator = await relay('keyward-validator');
    // Both relays listen before anything is staged (their first, empty rounds are done).
    await new Promise((r) => setTimeout(r, 1_000));

    const tenant = `t-${randomUUID()}`;
    for (let i = 0; i < 3; i++) await stage(await pool('keyward-intake'), tenant);
    await eventually(() => tap.ofType('key.revalidate', tenant).length === 3, 10_000, 'three events published');
    // The relay counts what it published once its marks are committed, just after the broker's confirm.
    await eventually(async () => (await intake.published()) === 3, 5_000, 'three counted by the intake relay');
    expect(await validator.published()).toBe(0);

    // A writer that is no relaying service (a script, the reconciler's nudge): every relay wakes.
    const other = `t-${randomUUID()}`;
    await stage(await pool('keyward-tool'), other);
    await eventually(() => tap.ofType('key.revalidate', other).length === 1, 10_000, 'published by whichever relay claimed it');
    await eventually(async () => (await intake.published()) + (await validator.published()) === 4, 5_000, 'four counted in all');
  });

  it('leaves a commit of a service whose relay is gone to the next poll of another', async () => {
    const gone = `t-${randomUUID()}`;
    const survivor = await relay('keyward-rotation', 1_500);
    await new Promise((r) => setTimeout(r, 500));
    // Written by the monitor, whose relay is not running here.
    await stage(await pool('keyward-monitor'), gone);
    await eventually(() => tap.ofType('key.revalidate', gone).length === 1, 10_000, 'picked up on the poll');
    await eventually(async () => (await survivor.published()) === 1, 5_000, 'counted by the surviving relay');
  });

  describe('events published by their writer right after the commit (ADR 0051)', () => {
    const revalidate = (tenant: string) => createEvent('key.revalidate', { tenantId: tenant, correlationId: randomUUID(), producer: 'monitor' }, { credentialId: randomUUID(), reason: 'probe' });
    /** Commits `event` staged for its writer to publish; what NOTIFY keyward_outbox said meanwhile. */
    async function commitForWriter(writer: DataSource, event: ReturnType<typeof revalidate>): Promise<string[]> {
      const listener = new Client({ connectionString: db.url });
      await listener.connect();
      const heard: string[] = [];
      listener.on('notification', (n) => heard.push(n.payload ?? ''));
      await listener.query('LISTEN keyward_outbox');
      await writer.transaction((tx) => pipelinedIn(tx, [Outbox.staging([event], true)!]));
      await new Promise((r) => setTimeout(r, 300));
      await listener.end();
      return heard;
    }
    const publishedAt = async (id: string) => (await db.query<{ published_at: Date | null }>('SELECT published_at FROM outbox WHERE id = $1', [id]))[0]?.published_at ?? null;

    it('go to the broker when handed over, wake no relay, and are marked published', async () => {
      const own = await relay('keyward-gateway');
      const writer = own.dataSource;
      const tenant = `t-${randomUUID()}`;
      const event = revalidate(tenant);
      expect(await commitForWriter(writer, event)).toEqual([]);
      expect(tap.ofType('key.revalidate', tenant)).toHaveLength(0);
      CommittedEvents.publish(writer, [event]);
      await eventually(() => tap.ofType('key.revalidate', tenant).length === 1, 10_000, 'published by its writer');
      await eventually(async () => (await publishedAt(event.id)) !== null, 5_000, 'marked published');
      expect(await own.published()).toBe(1);
    });

    it('are the relay’s to publish once their grace is over, when their writer never published them', async () => {
      const writer = await pool('keyward-intake');
      await relay('keyward-intake', 500);
      const tenant = `t-${randomUUID()}`;
      const event = revalidate(tenant);
      const committedAt = Date.now();
      expect(await commitForWriter(writer, event)).toEqual([]);
      // Not handed over (the writer stopped right after its commit, say).
      await eventually(() => tap.ofType('key.revalidate', tenant).length === 1, (WRITER_GRACE_SECONDS + 10) * 1_000, 'published by a relay after the grace');
      expect(Date.now() - committedAt).toBeGreaterThanOrEqual(WRITER_GRACE_SECONDS * 1_000 - 500);
      // The mark rides with the claim's commit, after the broker's confirm: it may land just after the tap sees the message.
      await eventually(async () => (await publishedAt(event.id)) !== null, 5_000, 'marked published with the claim’s commit');
    });

    it('keeps publishing what is handed over after events it had to leave while the broker was away', async () => {
      const amqp = new AmqpConnection({ url: testAmqpUrl(), prefix, logger: logs.logger, name: 'relay-test-late-broker' });
      const writer = await pool('keyward-rotation');
      const late = new OutboxRelay(writer, amqp, db.url, logs.logger, new Metrics('late-broker'), { application: 'keyward-rotation', pollIntervalMs: 600_000 });
      late.start();
      open.push({ close: () => late.stop() }, { close: () => amqp.close() });
      // Not connected yet: these are left for a relay after the grace.
      const early = revalidate(`t-${randomUUID()}`);
      await commitForWriter(writer, early);
      CommittedEvents.publish(writer, [early]);
      await amqp.start();
      const next = revalidate(`t-${randomUUID()}`);
      await commitForWriter(writer, next);
      CommittedEvents.publish(writer, [next]);
      await eventually(() => tap.ofType('key.revalidate', next.tenantId).length === 1, 5_000, 'the next event published by its writer');
      expect(await publishedAt(early.id)).toBeNull();
    });

    it('publishes and marks what was handed over before it stops, even handed over in the same turn as the stop', async () => {
      const amqp = new AmqpConnection({ url: testAmqpUrl(), prefix, logger: logs.logger, name: 'relay-test-stopping' });
      await amqp.start();
      const writer = await pool('keyward-validator');
      const stopping = new OutboxRelay(writer, amqp, db.url, logs.logger, new Metrics('stopping'), { application: 'keyward-validator', pollIntervalMs: 600_000 });
      stopping.start();
      open.push({ close: () => amqp.close() });
      // A service's last commits before SIGTERM reached its relay (a scheduler's last tick, say):
      // nothing else runs once every service of the deployment has stopped.
      const events = Array.from({ length: 30 }, () => revalidate(`t-${randomUUID()}`));
      for (const event of events) await writer.transaction((tx) => pipelinedIn(tx, [Outbox.staging([event], true)!]));
      for (const event of events) CommittedEvents.publish(writer, [event]);
      await stopping.stop();
      const unpublished = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::uuid[]) AND published_at IS NULL', [events.map((e) => e.id)]);
      expect(unpublished[0].n).toBe(0);
      await eventually(() => events.every((e) => tap.ofType('key.revalidate', e.tenantId).length === 1), 5_000, 'every one on the broker');
    });

    it('a commit staged for the relay still wakes it at once', async () => {
      const writer = await pool('keyward-tool');
      const heard: string[] = [];
      const listener = new Client({ connectionString: db.url });
      await listener.connect();
      listener.on('notification', (n) => heard.push(n.payload ?? ''));
      await listener.query('LISTEN keyward_outbox');
      await stage(writer, `t-${randomUUID()}`);
      await eventually(() => heard.length === 1, 5_000, 'NOTIFY for a row available now');
      await listener.end();
      expect(heard).toEqual(['keyward-tool']);
    });
  });
});
