import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { createEvent, EventEnvelope } from '@keyward/contracts';
import { AmqpConnection, AmqpEventServer, deleteTopology, Inbox, Outbox, OutboxRelay } from '@keyward/messaging';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { createDataSource } from '@keyward/persistence';
import { cpus } from 'node:os';
import { BENCH_AMQP_URL, runBenchmark, withBenchDatabase } from './bench-database';
import { costMeter, describeCost, PhaseCost } from './bench-processes';

/**
 * npm run bench:messaging [-- N]
 * The outbox path (transaction → outbox row → relay with confirms → RabbitMQ → consumer with an
 * inbox transaction) against raw amqplib publish-with-confirms → consume-and-ack, same broker,
 * same process, same N; with each the CPU time an event took, in this process and in the
 * machine's Postgres and RabbitMQ (steadier than the rates on a shared machine). Local services only.
 */
const N = Number(process.argv[2] ?? 20_000);
/** Events per producing transaction, and producing transactions in flight at once. */
const PER_TX = Number(process.argv[3] ?? 10);
const WRITERS = Number(process.argv[4] ?? 8);
/** `end-to-end` (default): producers, relay and consumer at once; `drain`: relay + consumer from a full outbox. */
const MODE = process.argv[5] ?? 'end-to-end';
const AMQP = BENCH_AMQP_URL;

/** Events a second over the timed phase, and the CPU time each took. */
interface Run {
  rate: number;
  cost: PhaseCost;
}

async function raw(n: number): Promise<Run> {
  const connection = await connect(AMQP);
  const pub = await connection.createConfirmChannel();
  const sub = await connection.createChannel();
  const queue = `bench.raw.${randomUUID()}`;
  await pub.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await sub.prefetch(200);
  let received = 0;
  const meter = costMeter();
  const started = process.hrtime.bigint();
  const done = new Promise<void>((resolve) => {
    void sub.consume(queue, (msg) => {
      if (!msg) return;
      sub.ack(msg);
      if (++received === n) resolve();
    });
  });
  const body = (i: number) => Buffer.from(JSON.stringify({ i, id: randomUUID(), type: 'key.revalidate', data: { credentialId: randomUUID() } }));
  for (let i = 0; i < n; i += 500) {
    for (let j = i; j < Math.min(n, i + 500); j++) pub.sendToQueue(queue, body(j), { persistent: true, contentType: 'application/json' });
    await pub.waitForConfirms();
  }
  await done;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cost = meter(n);
  await pub.deleteQueue(queue);
  await connection.close();
  return { rate: n / seconds, cost };
}

/**
 * `per-event`: the default worker path (validator, rotation): `Inbox.runOnce` per event, with
 * group commit. `alone`: the same with group commit off, one transaction per event (the path
 * before ADR 0039). `batched`: the event server's batch option (the monitor).
 */
type ConsumerPath = 'per-event' | 'alone' | 'batched';

async function outbox(n: number, databaseUrl: string, path: ConsumerPath): Promise<Run> {
  const batched = path === 'batched';
  const logger = KeywardLogger.create('bench', 'warn');
  const metrics = new Metrics('bench');
  const prefix = `bench${randomUUID().slice(0, 8)}`;
  const dataSource = await createDataSource({ url: databaseUrl, poolSize: 20 }).initialize();
  const amqp = new AmqpConnection({ url: AMQP, prefix, logger, name: 'keyward-bench' });
  await amqp.start();
  const relay = new OutboxRelay(dataSource, amqp, databaseUrl, logger, metrics);
  const server = new AmqpEventServer({
    connection: amqp,
    dataSource,
    subscriber: 'validator',
    prefetch: 200,
    logger,
    metrics,
    // As the monitor runs: deliveries that arrive together share one inbox transaction.
    batch: batched ? { consumer: 'bench', dataSource, maxSize: 100, maxConcurrent: 6 } : undefined,
  });
  let handled = 0;
  let resolveDone: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  server.addHandler(
    'key.revalidate',
    async (event: EventEnvelope) => {
      await Inbox.runOnce(dataSource, 'bench', event, async () => undefined, path === 'alone' ? { groupCommit: false } : {});
      if (++handled === n) resolveDone();
    },
    true,
  );
  const prestage = MODE === 'drain';
  if (!prestage) {
    await new Promise<void>((resolve, reject) => server.listen((err?: unknown) => (err ? reject(new Error('the event server did not start', { cause: err })) : resolve())));
    relay.start();
  }

  const origin = { tenantId: 'bench-tenant', correlationId: randomUUID(), producer: 'monitor' };
  let meter = costMeter();
  const started = process.hrtime.bigint();
  // Writers commit the way services do: a few events per transaction, several at once.
  const perTx = PER_TX;
  const writers = WRITERS;
  let next = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < n) {
        const count = Math.min(perTx, n - next);
        next += count;
        const events = Array.from({ length: count }, () => createEvent('key.revalidate', origin, { credentialId: randomUUID(), reason: 'probe' }));
        await dataSource.transaction((tx) => Outbox.stage(tx, ...events));
      }
    }),
  );
  const staged = Number(process.hrtime.bigint() - started) / 1e9;
  const drainStarted = process.hrtime.bigint();
  if (prestage) {
    meter = costMeter();
    await new Promise<void>((resolve, reject) => server.listen((err?: unknown) => (err ? reject(new Error('the event server did not start', { cause: err })) : resolve())));
    relay.start();
  }
  await done;
  const seconds = Number(process.hrtime.bigint() - (prestage ? drainStarted : started)) / 1e9;
  const cost = meter(n);
  process.stdout.write(`  (${path} inbox tx: all ${n} committed to the outbox after ${staged.toFixed(2)} s, all handled after ${seconds.toFixed(2)} s)\n`);

  await relay.stop();
  await server.close();
  const channel = await (amqp.current as NonNullable<typeof amqp.current>).createChannel();
  await deleteTopology(channel, amqp.names);
  await amqp.close();
  await dataSource.destroy();
  return { rate: n / seconds, cost };
}

async function main(): Promise<void> {
  await withBenchDatabase('messaging', async (url) => {
    process.stdout.write(`bench:messaging — N=${N} events, ${PER_TX} per transaction, ${WRITERS} writers, ${cpus().length} cores, Node ${process.version}\n`);
    await raw(Math.min(N, 2_000)); // warm-up
    const baseline = await raw(N);
    const rawRate = baseline.rate;
    const runs = { alone: await outbox(N, url, 'alone'), single: await outbox(N, url, 'per-event'), batched: await outbox(N, url, 'batched') };
    const [alone, single, batched] = [runs.alone.rate, runs.single.rate, runs.batched.rate];
    const pct = (x: number) => `${((x / rawRate) * 100).toFixed(1)} %`;
    process.stdout.write(`raw amqplib publish-with-confirms → consume/ack           : ${rawRate.toFixed(0)} events/s\n`);
    process.stdout.write(`outbox → relay → RabbitMQ → consumer, one tx per event    : ${alone.toFixed(0)} events/s  (${pct(alone)} of raw; before group commit)\n`);
    process.stdout.write(
      `outbox → relay → RabbitMQ → consumer, per event (default) : ${single.toFixed(0)} events/s  (${pct(single)} of raw; group commit, ${(single / alone).toFixed(2)}× one tx per event)\n`,
    );
    process.stdout.write(`outbox → relay → RabbitMQ → consumer, batched inbox tx    : ${batched.toFixed(0)} events/s  (${pct(batched)} of raw)\n`);
    process.stdout.write(`CPU per event, raw                                        : ${describeCost(baseline.cost)}\n`);
    process.stdout.write(`CPU per event, one tx per event                           : ${describeCost(runs.alone.cost)}\n`);
    process.stdout.write(`CPU per event, per event (default)                        : ${describeCost(runs.single.cost)}\n`);
    process.stdout.write(`CPU per event, batched inbox tx                           : ${describeCost(runs.batched.cost)}\n`);
  });
}

runBenchmark('messaging', main);
