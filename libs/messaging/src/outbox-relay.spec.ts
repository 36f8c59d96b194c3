import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createEvent } from '@keyward/contracts';
import { Metrics } from '@keyward/observability';
import { createDataSource } from '@keyward/persistence';
import { captureLogs, createTestDatabase, dropTopology, EventTap, eventually, TestDatabase, testAmqpUrl, testPrefix } from '@keyward/testing';
import { AmqpConnection } from './amqp-connection';
import { Outbox } from './outbox';
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
  async function relay(application: string, pollIntervalMs = 600_000): Promise<{ relay: OutboxRelay; published: () => Promise<number> }> {
    const amqp = new AmqpConnection({ url: testAmqpUrl(), prefix, logger: logs.logger, name: `relay-test-${application}` });
    await amqp.start();
    const metrics = new Metrics(application);
    const started = new OutboxRelay(await pool(application), amqp, db.url, logs.logger, metrics, { application, pollIntervalMs });
    started.start();
    open.push({ close: () => started.stop() }, { close: () => amqp.close() });
    const published = async () => (await metrics.registry.getSingleMetric('keyward_outbox_published_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    return { relay: started, published };
  }

  const stage = (writer: DataSource, tenant: string) =>
    writer.transaction((tx) =>
      Outbox.stage(tx, createEvent('key.revalidate', { tenantId: tenant, correlationId: randomUUID(), producer: 'monitor' }, { credentialId: randomUUID(), reason: 'probe' })),
    );

  it('publishes a commit with the writing service relay; the others stay asleep, and a commit of no service wakes them all', async () => {
    const intake = await relay('keyward-intake');
    const validator = await relay('keyward-validator');
    // Both relays listen before anything is staged (their first, empty rounds are done).
    await new Promise((r) => setTimeout(r, 1_000));

    const tenant = `t-${randomUUID()}`;
    for (let i = 0; i < 3; i++) await stage(await pool('keyward-intake'), tenant);
    await eventually(() => tap.ofType('key.revalidate', tenant).length === 3, 10_000, 'three events published');
    expect(await intake.published()).toBe(3);
    expect(await validator.published()).toBe(0);

    // A writer that is no relaying service (a script, the reconciler's nudge): every relay wakes.
    const other = `t-${randomUUID()}`;
    await stage(await pool('keyward-tool'), other);
    await eventually(() => tap.ofType('key.revalidate', other).length === 1, 10_000, 'published by whichever relay claimed it');
    expect((await intake.published()) + (await validator.published())).toBe(4);
  });

  it('leaves a commit of a service whose relay is gone to the next poll of another', async () => {
    const gone = `t-${randomUUID()}`;
    const survivor = await relay('keyward-rotation', 1_500);
    await new Promise((r) => setTimeout(r, 500));
    // Written by the monitor, whose relay is not running here.
    await stage(await pool('keyward-monitor'), gone);
    await eventually(() => tap.ofType('key.revalidate', gone).length === 1, 10_000, 'picked up on the poll');
    expect(await survivor.published()).toBe(1);
  });
});
