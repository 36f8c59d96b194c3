import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBenchmark, withBenchDatabase } from './bench-database';
import { benchServiceEnv, countingStatements, cpuTimeMs, serverCpuTimeMs, startProcess, statementsSoFar, stopProcesses } from './bench-processes';

/**
 * npm run bench:idle [-- SETTLE_SECONDS WINDOW_SECONDS]
 * What keyward's five services cost while nothing happens: each started as its own process (as
 * deployed, beside the sandbox), left to settle (default 30 s: start-up's garbage collections are
 * over), then watched for a window (default 30 s): CPU per second of each service, of Postgres and
 * of RabbitMQ (from /proc), and each service's round trips to Postgres per second (its relays'
 * and sweeps' looks). Beside them, in the same window, a bare Node process that only keeps a timer:
 * the floor any process costs. Local services only; its own database and AMQP prefix.
 */
const SETTLE_S = positive(process.argv[2], 30);
const WINDOW_S = positive(process.argv[3], 30);
const SERVICES = ['intake', 'validator', 'rotation', 'monitor', 'gateway'] as const;

function positive(value: string | undefined, fallback: number): number {
  const n = Number(value ?? fallback);
  if (!Number.isInteger(n) || n < 1 || n > 3_600) throw new Error(`expected whole seconds between 1 and 3600, got ${value}`);
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const counts = mkdtempSync(join(tmpdir(), 'keyward-bench-idle-'));
  try {
    await withBenchDatabase('idle', async (databaseUrl) => {
      process.stdout.write(`bench:idle — ${SERVICES.join(', ')} idle: ${SETTLE_S} s to settle, then a ${WINDOW_S} s window; ${cpus().length} cores, Node ${process.version}\n`);
      const sandbox = await startProcess('pleo-sandbox', { NODE_ENV: 'test', LOG_LEVEL: 'warn' }, '/health/live');
      const children = [sandbox.child];
      try {
        const env = benchServiceEnv(databaseUrl, `benchidle${randomBytes(4).toString('hex')}`, { PLEO_API_BASE_URL: sandbox.url });
        const services = [];
        for (const name of SERVICES) {
          const counting = countingStatements(join(counts, name));
          const { child } = await startProcess(name, { ...env, ...counting.env }, '/health/ready', counting.nodeFlags, join(counts, `${name}.log`));
          children.push(child);
          services.push({ name, child, file: join(counts, name) });
        }
        const floor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)'], { stdio: 'ignore' });
        children.push(floor);

        await sleep(SETTLE_S * 1_000);
        const cpuBefore = services.map((s) => cpuTimeMs(s.child));
        const floorBefore = cpuTimeMs(floor);
        const serversBefore = serverCpuTimeMs();
        const tripsBefore = await Promise.all(services.map((s) => statementsSoFar(s.child, s.file)));
        const started = Date.now();
        await sleep(WINDOW_S * 1_000);
        const seconds = (Date.now() - started) / 1_000;
        const cpuAfter = services.map((s) => cpuTimeMs(s.child));
        const floorAfter = cpuTimeMs(floor);
        const serversAfter = serverCpuTimeMs();
        const tripsAfter = await Promise.all(services.map((s) => statementsSoFar(s.child, s.file)));

        const perSecond = (before: number | undefined, after: number | undefined) => (before === undefined || after === undefined ? undefined : (after - before) / seconds);
        const ms = (n: number | undefined) => (n === undefined ? 'n/a' : `${n.toFixed(1)} ms`);
        let total = 0;
        for (const [i, s] of services.entries()) {
          const cpu = perSecond(cpuBefore[i], cpuAfter[i]);
          total += cpu ?? 0;
          process.stdout.write(`${s.name.padEnd(10)} CPU ${ms(cpu).padStart(9)} a second   round trips to Postgres ${((tripsAfter[i] - tripsBefore[i]) / seconds).toFixed(2).padStart(6)} a second\n`);
        }
        const floorCpu = perSecond(floorBefore, floorAfter);
        if (serversBefore && serversAfter) {
          process.stdout.write(
            `Postgres   CPU ${ms(perSecond(serversBefore.postgres, serversAfter.postgres)).padStart(9)} a second\nRabbitMQ   CPU ${ms(perSecond(serversBefore.broker, serversAfter.broker)).padStart(9)} a second\n`,
          );
        }
        const trips = tripsAfter.reduce((a, b) => a + b, 0) - tripsBefore.reduce((a, b) => a + b, 0);
        process.stdout.write(`the five services together: CPU ${ms(total)} a second (${((total / 1_000) * 100).toFixed(1)} % of one core), ${(trips / seconds).toFixed(2)} round trips a second\n`);
        process.stdout.write(
          `baseline — a bare Node process keeping one timer, same window: CPU ${ms(floorCpu)} a second` +
            (floorCpu !== undefined ? `; the services together ${(total / Math.max(floorCpu, 0.1)).toFixed(0)}× it (floor 0.1 ms a second)` : '') +
            '\n',
        );
      } finally {
        await stopProcesses(children);
      }
    });
  } finally {
    rmSync(counts, { recursive: true, force: true });
  }
}

runBenchmark('idle', main);
