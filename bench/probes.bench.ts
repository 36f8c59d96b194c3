import 'reflect-metadata';
import { cpus } from 'node:os';
import { Client } from 'pg';
import { loadConfig } from '@keyward/config';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { createDataSource } from '@keyward/persistence';
import { BENCH_AMQP_URL, runBenchmark, withBenchDatabase } from './bench-database';
import { ACTIVE_CONNECTIONS } from './bench-tenants';
import { ConnectionHealthRepository } from '../apps/monitor/connection-health.repository';
import { MonitorMetrics } from '../apps/monitor/monitor-metrics';
import { DEFAULT_MONITOR_TIMINGS } from '../apps/monitor/monitor-options';
import { ProbeScheduler } from '../apps/monitor/probe-scheduler.service';
import { ProviderIncidentRepository } from '../apps/monitor/provider-incident.repository';
import { ProviderIncidentService } from '../apps/monitor/provider-incident.service';

/**
 * npm run bench:probes [-- HOURS SMALL LARGE]
 * The monitor's probe scheduler on simulated time: SMALL (default 10,000) and then LARGE (default
 * 100,000) active connections, each in a database of its own, health rows started by the
 * scheduler's own repair round (so each probe has its place in the interval), then one tick per
 * simulated `schedulerTickMs` (1 s, as deployed) for HOURS (default 24, one whole interval) of simulated time, the
 * clock passed to `tick(at)`. Configuration as deployed (interval 24 h, share 0.1 of 600/min).
 * Per tick: statements, the time spent in them, rows Postgres read (pg_stat_user_tables), wall
 * time (percentiles of the plain ticks; means of those that also run a repair round: of the
 * connections changed lately each minute, of all of them each hour); and
 * how the probes fall: the most in any simulated minute beside the even share and the budget.
 * The small run is the baseline; the ratio column is large ÷ small. Local services only.
 */
const HOURS = positive(process.argv[2], 24, 24);
const SIZES = [Math.round(positive(process.argv[3], 10_000, 1_000_000)), Math.round(positive(process.argv[4], 100_000, 1_000_000))];

function positive(value: string | undefined, fallback: number, max: number): number {
  const n = Number(value ?? fallback);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`expected a number above 0 and at most ${max}, got ${value}`);
  return n;
}

/** Statements the scheduler sends while `on`, and the time until each one answered. */
const statements = { on: false, count: 0, ms: 0 };
type QueryArgs = unknown[];
type SendQuery = (this: Client, ...args: QueryArgs) => unknown;
const clientPrototype = Client.prototype as unknown as { query: SendQuery };
const sendQuery = Object.getOwnPropertyDescriptor(clientPrototype, 'query')?.value as SendQuery;
clientPrototype.query = function (this: Client, ...args: QueryArgs) {
  if (!statements.on) return sendQuery.apply(this, args);
  statements.count++;
  const started = process.hrtime.bigint();
  const took = () => (statements.ms += Number(process.hrtime.bigint() - started) / 1e6);
  const callback = args[args.length - 1];
  if (typeof callback === 'function') {
    args[args.length - 1] = (...result: unknown[]) => {
      took();
      (callback as (...r: unknown[]) => void)(...result);
    };
    return sendQuery.apply(this, args);
  }
  const answer = sendQuery.apply(this, args);
  if (answer instanceof Promise) void answer.then(took, took);
  return answer;
};

interface TableReads {
  seqScans: number;
  seqRows: number;
  idxScans: number;
  idxRows: number;
}

async function tableReads(url: string): Promise<TableReads> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<TableReads>(
      `SELECT coalesce(sum(seq_scan), 0)::float8 AS "seqScans", coalesce(sum(seq_tup_read), 0)::float8 AS "seqRows",
              coalesce(sum(idx_scan), 0)::float8 AS "idxScans", coalesce(sum(idx_tup_fetch), 0)::float8 AS "idxRows"
       FROM pg_stat_user_tables`,
    );
    return rows[0];
  } finally {
    await client.end();
  }
}

interface Run {
  tenants: number;
  ticks: number;
  statementsPerTick: number;
  queryMsPerTick: number;
  tickP50Ms: number;
  tickP99Ms: number;
  repairTickMs: number;
  fullRepairTickMs: number;
  rowsReadPerTick: number;
  seqScansPerTick: number;
  evenSharePerMinute: number;
  scheduledMaxPerMinute: number;
  dueInWindow: number;
  probes: number;
  distinctProbed: number;
  maxInAnyMinute: number;
  maxInSlidingMinute: number;
  budgetPerMinute: number;
  stillDue: number;
  maxLagMinutes: number;
}

const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

function monitorConfig(url: string) {
  return loadConfig('monitor', {
    NODE_ENV: 'test',
    DATABASE_URL: url,
    AMQP_URL: BENCH_AMQP_URL,
    LOG_LEVEL: 'warn',
    KEYWARD_SERVICE_TOKENS: 'bench=bench-service-token-000',
  });
}

/** Active connections (rotation's rows), then health rows from the scheduler's own repair round. */
async function seed(url: string, tenants: number): Promise<Date> {
  const config = monitorConfig(url);
  const dataSource = createDataSource({ url, poolSize: 2, applicationName: 'keyward-bench-probes-seed' });
  await dataSource.initialize();
  try {
    await dataSource.query(ACTIVE_CONNECTIONS, [tenants, ['bench'], '2 days']);
    const health = new ConnectionHealthRepository(config, DEFAULT_MONITOR_TIMINGS);
    const started = await health.startMonitoringActive(dataSource.manager);
    if (started.length !== tenants) throw new Error(`the repair round started ${started.length} health rows, not ${tenants}`);
    await dataSource.query(`VACUUM ANALYZE`);
    const [{ start }] = await dataSource.query<{ start: Date }[]>(`SELECT max(since) AS start FROM connection_health`);
    return start;
  } finally {
    await dataSource.destroy();
  }
}

async function simulate(url: string, tenants: number): Promise<Run> {
  const start = await seed(url, tenants);
  const config = monitorConfig(url);
  const timings = DEFAULT_MONITOR_TIMINGS;
  const intervalMinutes = config.monitor.probeIntervalHours * 60;
  const windowMs = HOURS * 3600_000;
  const end = new Date(start.getTime() + windowMs);

  const admin = new Client({ connectionString: url });
  await admin.connect();
  const [{ scheduledMax, dueInWindow }] = (
    await admin.query<{ scheduledMax: number; dueInWindow: number }>(
      `SELECT (SELECT max(n) FROM (SELECT count(*)::int AS n FROM connection_health GROUP BY floor(extract(epoch FROM next_probe_at - $1::timestamptz) / 60)) m) AS "scheduledMax",
              (SELECT count(*)::int FROM connection_health WHERE next_probe_at <= $2) AS "dueInWindow"`,
      [start, end],
    )
  ).rows;
  await admin.end();

  const before = await tableReads(url);
  const dataSource = createDataSource({ url, poolSize: 4, applicationName: 'keyward-bench-probes' });
  await dataSource.initialize();
  const logger = KeywardLogger.create('monitor', 'warn');
  const metrics = new MonitorMetrics(new Metrics('monitor'), dataSource, config);
  const health = new ConnectionHealthRepository(config, timings);
  const provider = new ProviderIncidentService(config, dataSource, new ProviderIncidentRepository(config), health, logger, metrics);
  const scheduler = new ProbeScheduler(dataSource, health, config, timings, provider, metrics, logger);

  const perTickMs: number[] = [];
  const repairTickMs: number[] = []; // ticks that also ran the repair round of changed connections (every reconcileEveryMs)
  const fullRepairTickMs: number[] = []; // ticks that also ran the repair round of every connection (every fullRepairEveryMs)
  const probesAt: number[] = []; // probes published by the tick at each simulated second
  statements.count = 0;
  statements.ms = 0;
  for (let t = 0; t < windowMs; t += timings.schedulerTickMs) {
    const tickStarted = process.hrtime.bigint();
    statements.on = true;
    const published = await scheduler.tick(new Date(start.getTime() + t));
    statements.on = false;
    const tookMs = Number(process.hrtime.bigint() - tickStarted) / 1e6;
    if (t % timings.fullRepairEveryMs === 0) fullRepairTickMs.push(tookMs);
    else if (t % timings.reconcileEveryMs === 0) repairTickMs.push(tookMs);
    else perTickMs.push(tookMs);
    probesAt.push(published);
  }
  const ticks = perTickMs.length + repairTickMs.length + fullRepairTickMs.length;
  const counted = { ...statements };
  const [{ distinct, stillDue, maxLagSeconds }] = await dataSource.query<{ distinct: number; stillDue: number; maxLagSeconds: number }[]>(
    `SELECT count(*) FILTER (WHERE last_probe_at IS NOT NULL)::int AS distinct,
            count(*) FILTER (WHERE next_probe_at <= $1)::int AS "stillDue",
            coalesce(extract(epoch FROM $1::timestamptz - min(next_probe_at) FILTER (WHERE next_probe_at <= $1)), 0)::float8 AS "maxLagSeconds"
     FROM connection_health`,
    [end],
  );
  await dataSource.destroy(); // a backend's table statistics are flushed when it ends
  await new Promise((r) => setTimeout(r, 500));
  const after = await tableReads(url);

  const ticksPerMinute = 60_000 / timings.schedulerTickMs;
  let maxInAnyMinute = 0;
  let maxInSlidingMinute = 0;
  let sliding = 0;
  for (let i = 0; i < probesAt.length; i++) {
    sliding += probesAt[i] - (i >= ticksPerMinute ? probesAt[i - ticksPerMinute] : 0);
    maxInSlidingMinute = Math.max(maxInSlidingMinute, sliding);
    if (i % ticksPerMinute === 0)
      maxInAnyMinute = Math.max(
        maxInAnyMinute,
        probesAt.slice(i, i + ticksPerMinute).reduce((a, b) => a + b, 0),
      );
  }
  const sorted = [...perTickMs].sort((a, b) => a - b);
  return {
    tenants,
    ticks,
    statementsPerTick: counted.count / ticks,
    queryMsPerTick: counted.ms / ticks,
    tickP50Ms: percentile(sorted, 0.5),
    tickP99Ms: percentile(sorted, 0.99),
    repairTickMs: mean(repairTickMs),
    fullRepairTickMs: mean(fullRepairTickMs),
    rowsReadPerTick: (after.seqRows - before.seqRows + after.idxRows - before.idxRows) / ticks,
    seqScansPerTick: (after.seqScans - before.seqScans) / ticks,
    evenSharePerMinute: tenants / intervalMinutes,
    scheduledMaxPerMinute: scheduledMax,
    dueInWindow,
    probes: probesAt.reduce((a, b) => a + b, 0),
    distinctProbed: distinct,
    maxInAnyMinute,
    maxInSlidingMinute,
    budgetPerMinute: scheduler.probesPerMinute,
    stillDue,
    maxLagMinutes: maxLagSeconds / 60,
  };
}

function table(runs: Run[]): void {
  const [small, large] = runs;
  const rows: [string, (r: Run) => number, number][] = [
    ['ticks simulated (1 per schedulerTickMs)', (r) => r.ticks, 0],
    ['statements per tick', (r) => r.statementsPerTick, 2],
    ['time in statements per tick, ms', (r) => r.queryMsPerTick, 2],
    ['tick wall time p50, ms', (r) => r.tickP50Ms, 2],
    ['tick wall time p99, ms', (r) => r.tickP99Ms, 2],
    ['tick with the repair of changed rows (each min), ms', (r) => r.repairTickMs, 2],
    ['tick with the full repair (each hour), mean ms', (r) => r.fullRepairTickMs, 2],
    ['rows read per tick (seq + index)', (r) => r.rowsReadPerTick, 1],
    ['sequential scans per tick', (r) => r.seqScansPerTick, 2],
    ['even share of probes per minute (tenants / interval)', (r) => r.evenSharePerMinute, 1],
    ['most probes scheduled in one minute of the interval', (r) => r.scheduledMaxPerMinute, 0],
    ['probe budget per minute (share × Pleo limit)', (r) => r.budgetPerMinute, 0],
    ['probes falling due in the window', (r) => r.dueInWindow, 0],
    ['probes published', (r) => r.probes, 0],
    ['tenants probed (none twice)', (r) => r.distinctProbed, 0],
    ['most probes in one clock minute', (r) => r.maxInAnyMinute, 0],
    ['most probes in any sliding minute', (r) => r.maxInSlidingMinute, 0],
    ['still due at the end', (r) => r.stillDue, 0],
    ['oldest still due, minutes late', (r) => r.maxLagMinutes, 1],
  ];
  const label = 54;
  const col = 12;
  const head = `${''.padEnd(label)}${small.tenants.toLocaleString('en').padStart(col)}${large.tenants.toLocaleString('en').padStart(col)}${'ratio'.padStart(col)}\n`;
  process.stdout.write(head);
  for (const [name, value, digits] of rows) {
    const a = value(small);
    const b = value(large);
    const ratio = a === 0 ? (b === 0 ? '—' : '∞') : `${(b / a).toFixed(2)}×`;
    process.stdout.write(`${name.padEnd(label)}${a.toFixed(digits).padStart(col)}${b.toFixed(digits).padStart(col)}${ratio.padStart(col)}\n`);
  }
}

async function main(): Promise<void> {
  const config = monitorConfig('postgres://postgres@127.0.0.1:5432/unused');
  process.stdout.write(
    `bench:probes — ${SIZES.map((n) => n.toLocaleString('en')).join(' and ')} active connections, ${HOURS} h simulated at one tick per ` +
      `${DEFAULT_MONITOR_TIMINGS.schedulerTickMs} ms, interval ${config.monitor.probeIntervalHours} h, share ${config.monitor.probeShareOfRateLimit} of ` +
      `${config.monitor.pleoRateLimitPerMinute}/min, ${cpus().length} cores, Node ${process.version}\n`,
  );
  const runs: Run[] = [];
  for (const tenants of SIZES) {
    const started = Date.now();
    runs.push(await withBenchDatabase('probes', (url) => simulate(url, tenants)));
    process.stdout.write(`  ${tenants.toLocaleString('en')} tenants: ${((Date.now() - started) / 1000).toFixed(0)} s of real time\n`);
  }
  table(runs);
}

runBenchmark('probes', main);
