import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { connect } from 'amqplib';
import { deleteTopology, TopologyNames } from '@keyward/messaging';
import { BENCH_AMQP_URL, runBenchmark, withBenchDatabase } from './bench-database';

/**
 * npm run bench:image [-- RUNS]  (after `npm run image:build`)
 * 1. Size of the keyward image beside its base image (node:24-bookworm-slim), same engine.
 * 2. Start-up: `docker run` → first 200 from /health/live, read-only root, uid 1000, for
 *    - a bare Node HTTP server in the base image (the baseline: engine + Node start, no keyward),
 *    - the Pleo sandbox (Nest, no dependencies),
 *    - intake in production mode with the local backend against this machine's Postgres and
 *      RabbitMQ (its own migrated database and AMQP prefix, removed afterwards), to /health/ready.
 * 3. Stop: `docker stop` (SIGTERM) → exited, with the exit code.
 * Median of RUNS (default 3). Host networking, so the services reach 127.0.0.1.
 */
const RUNS = Math.min(Number(process.argv[2] ?? 3), 10);
const IMAGE = process.env.KEYWARD_IMAGE ?? 'keyward:local';
const BASE = process.env.NODE_IMAGE ?? 'node:24-bookworm-slim';

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' }).trim();
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
/** A port free on this host now (the containers share the host's network). */
async function port(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port: free } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return free;
}

interface Run {
  startMs: number;
  stopMs: number;
  exitCode: number;
}

async function startAndStop(image: string, path: string, env: Record<string, string>, args: string[], entrypoint?: string): Promise<Run> {
  const p = await port();
  const name = `keyward-bench-image-${randomBytes(4).toString('hex')}`;
  const envArgs = Object.entries({ ...env, PORT: String(p) }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const started = performance.now();
  docker('run', '-d', '--name', name, '--network', 'host', '--read-only', '--tmpfs', '/tmp', '--user', '1000:1000', ...(entrypoint ? ['--entrypoint', entrypoint] : []), ...envArgs, image, ...args);
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${p}${path}`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (docker('inspect', '-f', '{{.State.Running}}', name) !== 'true') throw new Error(`${args.join(' ')} exited at start: ${docker('logs', '--tail', '20', name)}`);
      if (performance.now() - started > 180_000) throw new Error(`${args.join(' ')}: no answer on ${path} within 180 s`);
      await new Promise((done) => setTimeout(done, 50));
    }
    const startMs = performance.now() - started;
    const stopping = performance.now();
    docker('stop', '-t', '30', name);
    const stopMs = performance.now() - stopping;
    return { startMs, stopMs, exitCode: Number(docker('inspect', '-f', '{{.State.ExitCode}}', name)) };
  } finally {
    docker('rm', '-f', name);
  }
}

async function measure(label: string, runOnce: () => Promise<Run>): Promise<Run> {
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runOnce());
  const result = { startMs: median(runs.map((r) => r.startMs)), stopMs: median(runs.map((r) => r.stopMs)), exitCode: Math.max(...runs.map((r) => r.exitCode)) };
  process.stdout.write(`${label.padEnd(44)} start ${result.startMs.toFixed(0).padStart(6)} ms   stop ${result.stopMs.toFixed(0).padStart(5)} ms   exit ${result.exitCode}\n`);
  return result;
}

runBenchmark('image', async () => {
  const size = Number(docker('image', 'inspect', '-f', '{{.Size}}', IMAGE));
  const baseSize = Number(docker('image', 'inspect', '-f', '{{.Size}}', BASE));
  process.stdout.write(`bench:image — ${IMAGE} on ${BASE}, median of ${RUNS}\n`);
  process.stdout.write(`size: ${mib(size)} (base ${mib(baseSize)}; keyward adds ${mib(size - baseSize)}; ratio ${(size / baseSize).toFixed(2)})\n`);

  const bare = await measure('baseline: bare node HTTP server (base image)', () =>
    startAndStop(BASE, '/', {}, ['-e', "require('http').createServer((q,r)=>r.end('ok')).listen(process.env.PORT,'127.0.0.1');process.on('SIGTERM',()=>process.exit(0))"], 'node'),
  );
  const sandbox = await measure('pleo-sandbox → /health/live', () => startAndStop(IMAGE, '/health/live', { NODE_ENV: 'development', LOG_LEVEL: 'warn' }, ['dist/apps/pleo-sandbox/main.js']));
  const prefix = `bench-image-${randomBytes(3).toString('hex')}`;
  const intake = await withBenchDatabase('image', (databaseUrl) =>
    measure('intake (production, local backend) → /health/ready', () =>
      startAndStop(
        IMAGE,
        '/health/ready',
        {
          NODE_ENV: 'production',
          LOG_LEVEL: 'warn',
          DATABASE_URL: databaseUrl,
          AMQP_URL: BENCH_AMQP_URL,
          KEYWARD_AMQP_PREFIX: prefix,
          PLEO_API_BASE_URL: 'https://external.pleo.io',
          PLEO_REQUIRED_SCOPES: 'accounts:read export-jobs:write',
          KEYWARD_SECRETS_BACKEND: 'local',
          KEYWARD_MASTER_KEY: `bench:${randomBytes(32).toString('base64')}`,
          KEYWARD_FINGERPRINT_PEPPER: randomBytes(32).toString('base64'),
          KEYWARD_SERVICE_TOKENS: `bench=${randomBytes(16).toString('hex')}`,
        },
        ['dist/apps/intake/main.js'],
      ),
    ),
  ).finally(async () => {
    const connection = await connect(BENCH_AMQP_URL);
    const channel = await connection.createChannel();
    await deleteTopology(channel, new TopologyNames(prefix)).catch(() => undefined);
    await connection.close();
  });
  process.stdout.write(`ratios to the baseline start: pleo-sandbox ${(sandbox.startMs / bare.startMs).toFixed(1)}×, intake ${(intake.startMs / bare.startMs).toFixed(1)}×\n`);
});
