import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { NestFactory } from '@nestjs/core';
import { connect } from 'amqplib';
import { Client } from 'pg';
import { attachEventServer, ServiceDefinition, serviceRootModule } from '@keyward/bootstrap';
import { DEFAULT_PREFETCH, loadConfig } from '@keyward/config';
import { createEvent } from '@keyward/contracts';
import { AmqpConnection, deleteTopology, TopologyNames } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { BENCH_AMQP_URL, runBenchmark, withBenchDatabase } from './bench-database';
import { costMeter, describeCost, PhaseCost } from './bench-processes';
import { positiveInteger, seedHealthyTenants } from './bench-tenants';
import { MonitorModule } from '../apps/monitor/monitor.module';
import { monitorDefinition } from '../apps/monitor/monitor.definition';

/**
 * npm run bench:monitor [-- EVENTS TENANTS PREFETCH]
 * A burst of auth.failed (default 20,000 across 2,000 active tenants) through the monitor as
 * deployed (its default prefetch, `DEFAULT_PREFETCH.monitor`, unless PREFETCH is given; the raw
 * loop holds as many) (transport, inbox, health-row locks, failure inserts and window counts, a batch's in
 * one statement, ADR 0035), beside raw amqplib consume-and-ack of as many messages on the same
 * broker, in the same run, before and after the monitor's (the baseline is the mean of the two). Both consume a queue filled beforehand, so the figures compare
 * consuming, not publishing, and both are warmed up first with WARMUP messages of the same queue
 * (the monitor's connections, prepared statements and compiled code, as the raw loop's): the timed
 * phase starts once those are through.
 * Local services only; its own database and AMQP prefix, removed afterwards.
 * BENCH_MONITOR_CPU_PROF=<file> writes a V8 CPU profile of the timed phase alone there (summarise
 * it with `node dist/bench/cpu-profile-summary.js <file>`).
 */
const EVENTS = positiveInteger(process.argv[2], 20_000, 1_000_000);
const TENANTS = positiveInteger(process.argv[3], 2_000, 200_000);
const PREFETCH = positiveInteger(process.argv[4], DEFAULT_PREFETCH.monitor, 10_000);

const AMQP = BENCH_AMQP_URL;
const WARMUP = Math.min(EVENTS, 2_000);
const PROFILE_FILE = process.env.BENCH_MONITOR_CPU_PROF;

/** Peak resident memory, sampled while the bench runs. */
const memory = { peak: 0, timer: undefined as NodeJS.Timeout | undefined };
function sampleMemory(): void {
  memory.peak = Math.max(memory.peak, process.memoryUsage().rss);
}

async function publishAll(publish: (i: number) => boolean, n: number, channel: { waitForConfirms(): Promise<void> }): Promise<void> {
  for (let i = 0; i < n; i += 1_000) {
    for (let j = i; j < Math.min(n, i + 1_000); j++) publish(j);
    await channel.waitForConfirms();
  }
}

async function raw(n: number): Promise<{ rate: number; cost: PhaseCost }> {
  const connection = await connect(AMQP);
  const pub = await connection.createConfirmChannel();
  const sub = await connection.createChannel();
  const queue = `bench.monitor.raw.${randomUUID()}`;
  await pub.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  const body = Buffer.from(JSON.stringify(failure('bench-tenant-0', randomUUID())));
  await publishAll((i) => pub.sendToQueue(queue, body, { persistent: true, messageId: String(i) }), n, pub);
  await sub.prefetch(PREFETCH);
  let received = 0;
  const meter = costMeter();
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    void sub.consume(queue, (msg) => {
      if (!msg) return;
      sub.ack(msg);
      if (++received === n) resolve();
    });
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cost = meter(n);
  await pub.deleteQueue(queue);
  await connection.close();
  return { rate: n / seconds, cost };
}

function failure(tenantId: string, credentialId: string | undefined, status: 401 | 403 = 401) {
  return createEvent(
    'auth.failed',
    { tenantId, correlationId: `bench-${randomUUID()}`, producer: 'bench' },
    { ...(credentialId ? { credentialId } : {}), status, source: 'bench', endpoint: '/v1/expenses', observedAt: new Date().toISOString() },
  );
}

/** The tenants' active credentials, in tenant order (`bench-0` …). */
async function seed(databaseUrl: string): Promise<string[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const byTenant = await seedHealthyTenants(client, TENANTS, ['bench']);
    return Array.from({ length: TENANTS }, (_, i) => byTenant.get(`bench-${i}`)!);
  } finally {
    await client.end();
  }
}

async function monitorRun(databaseUrl: string, credentials: string[]): Promise<{ rate: number; seconds: number; cost: PhaseCost }> {
  const prefix = `benchmon${randomUUID().slice(0, 8)}`;
  const logger = KeywardLogger.create('monitor', 'warn');
  const config = loadConfig('monitor', {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    AMQP_URL: AMQP,
    KEYWARD_AMQP_PREFIX: prefix,
    KEYWARD_AMQP_PREFETCH: String(PREFETCH),
    KEYWARD_DB_POOL_SIZE: '24',
    LOG_LEVEL: 'warn',
    KEYWARD_SERVICE_TOKENS: 'bench=bench-service-token-000',
  });

  // Fill the monitor's queue first (topology declared as the service declares it).
  const setup = new AmqpConnection({ url: AMQP, prefix, logger, name: 'keyward-bench-setup' });
  await setup.start();
  const channel = await setup.createConfirmChannel();
  const names = new TopologyNames(prefix);
  await publishAll(
    (i) => {
      const tenant = i % TENANTS;
      // Most name their credential; some do not (they count against the active one too).
      const event = failure(`bench-${tenant}`, i % 10 === 0 ? undefined : credentials[tenant], i % 50 === 0 ? 403 : 401);
      return channel.publish(names.exchange, event.type, Buffer.from(JSON.stringify(event)), { persistent: true, messageId: event.id, type: event.type });
    },
    WARMUP + EVENTS,
    channel,
  );
  await channel.close();

  const definition: ServiceDefinition = monitorDefinition(MonitorModule.withTimings({ schedulerTickMs: 1_000 }));
  const app = await NestFactory.create(serviceRootModule(definition, config, logger), { logger: false, abortOnError: false });
  await app.init();
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  await attachEventServer(app, definition, config);
  // The warm-up's events first (they are at the front of the queue), then the timed ones.
  await recorded(db, WARMUP);
  const profiler = PROFILE_FILE ? await startProfiler() : undefined;
  const meter = costMeter();
  const started = process.hrtime.bigint();
  await recorded(db, WARMUP + EVENTS);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cost = meter(EVENTS);
  if (profiler) await stopProfiler(profiler, PROFILE_FILE!);

  // Nothing lost, nothing twice, nothing parked.
  const [{ failures, inbox, counted, tenants, windowSum, degraded, incidents }] = (
    await db.query<Record<'failures' | 'inbox' | 'counted' | 'tenants' | 'windowSum' | 'degraded' | 'incidents', number>>(
      `SELECT (SELECT count(*)::int FROM auth_failures) AS failures,
              (SELECT count(*)::int FROM inbox WHERE consumer = 'monitor') AS inbox,
              (SELECT count(*)::int FROM auth_failures WHERE counts_against_active) AS counted,
              (SELECT count(*)::int FROM connection_health WHERE auth_failures > 0) AS tenants,
              (SELECT coalesce(sum(auth_failures), 0)::int FROM connection_health) AS "windowSum",
              (SELECT count(*)::int FROM connection_health WHERE state <> 'healthy') AS degraded,
              (SELECT count(*)::int FROM provider_incidents) AS incidents`,
    )
  ).rows;
  const check = await setup.createConfirmChannel();
  const parked = (await check.checkQueue(names.parkedQueue('monitor'))).messageCount;
  const left = (await check.checkQueue(names.queue('monitor'))).messageCount;
  await check.close();
  process.stdout.write(
    `  monitor: ${failures} failures recorded (${counted} against the active key), ${inbox} inbox rows, ${tenants} tenants with window counts ` +
      `(sum ${windowSum}), ${degraded} degraded, ${incidents} provider incident(s), ${parked} parked, ${left} left in queue\n`,
  );
  const lost = failures !== WARMUP + EVENTS || inbox !== WARMUP + EVENTS || parked !== 0 || windowSum !== counted;
  await db.end();
  await app.close();
  const cleanup = await (setup.current as NonNullable<typeof setup.current>).createChannel();
  await deleteTopology(cleanup, names);
  await setup.close();
  if (lost) throw new Error('events were lost, duplicated or parked (see the counts above)');
  return { rate: EVENTS / seconds, seconds, cost };
}

async function startProfiler(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return session;
}

async function stopProfiler(session: Session, file: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
  process.stdout.write(`  CPU profile of the timed phase written to ${file}\n`);
}

/** Waits until `n` failures are recorded. Polled cheaply, so the poll takes little from the monitor:
 * the id sequence is at least the rows written (it also counts conflicts and rolled back
 * batches); the exact count only then. */
async function recorded(db: Client, n: number): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const { rows: seq } = await db.query<{ n: number }>(`SELECT last_value::int AS n FROM auth_failures_id_seq`);
    const { rows } = seq[0].n < n ? { rows: [{ n: 0 }] } : await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM auth_failures`);
    if (rows[0].n >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${seq[0].n} of ${n} failures recorded after 10 minutes`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  memory.timer = setInterval(sampleMemory, 100);
  await withBenchDatabase('monitor', async (url) => {
    process.stdout.write(`bench:monitor — ${EVENTS} auth.failed across ${TENANTS} tenants, prefetch ${PREFETCH}, ${cpus().length} cores, Node ${process.version}\n`);
    const credentials = await seed(url);
    await raw(WARMUP); // warm-up
    // The baseline on both sides of the monitor's run, so a drift of the shared machine meets both alike.
    const before = await raw(EVENTS);
    const monitor = await monitorRun(url, credentials);
    const after = await raw(EVENTS);
    const rawRate = (before.rate + after.rate) / 2;
    const rawCost = { node: (before.cost.node + after.cost.node) / 2, postgres: mean(before.cost.postgres, after.cost.postgres), broker: mean(before.cost.broker, after.cost.broker) };
    sampleMemory();
    process.stdout.write(
      `raw amqplib consume → ack                          : ${rawRate.toFixed(0)} events/s (mean of ${before.rate.toFixed(0)} before the monitor's run, ${after.rate.toFixed(0)} after)\n`,
    );
    process.stdout.write(`monitor: consume → inbox + lock + insert + window count → ack : ${monitor.rate.toFixed(0)} events/s (${monitor.seconds.toFixed(2)} s)\n`);
    process.stdout.write(`ratio monitor/raw                                  : ${((monitor.rate / rawRate) * 100).toFixed(1)} %\n`);
    process.stdout.write(`CPU per event, raw                                 : ${describeCost(rawCost)}\n`);
    process.stdout.write(`CPU per event, monitor                             : ${describeCost(monitor.cost)}\n`);
    process.stdout.write(`peak RSS                                           : ${(memory.peak / 1024 / 1024).toFixed(0)} MiB\n`);
  }).finally(() => clearInterval(memory.timer));
}

function mean(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : (a + b) / 2;
}

runBenchmark('monitor', main);
