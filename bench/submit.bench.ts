import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { connect } from 'amqplib';
import { Pool } from 'undici';
import { deleteTopology, TopologyNames } from '@keyward/messaging';
import { BENCH_AMQP_URL, runBenchmark, withBenchDatabase } from './bench-database';
import { BENCH_SERVICE_TOKEN, benchServiceEnv, countingStatements, cpuTimeMs, quantile, serverCpuTimeMs, startProcess, statementsSoFar, stopProcesses } from './bench-processes';

/**
 * npm run bench:submit [-- SUBMISSIONS CONCURRENT_ROUNDS]
 * How long a key submission with `Prefer: wait=10` takes to come back accepted, through the real
 * services: sandbox, intake, validator and rotation each in their own process as deployed, on a
 * database and an exchange of the run's own. Each submission is a new tenant's first key (a fresh
 * sandbox key): intake stores it, the validator asks the sandbox's `/v1/introspect`, rotation
 * activates it, intake answers. Baseline, same run: the sandbox's own `/v1/introspect` round trip,
 * the one Pleo call the answer needs. Unloaded: one submission at a time; loaded: 20 at once.
 * BENCH_SUBMIT_CPU_PROF=<dir> writes a V8 CPU profile of intake, validator and rotation there
 * (summarise one with `node dist/bench/cpu-profile-summary.js <file>`).
 */
const SUBMISSIONS = Math.max(50, Math.min(Number(process.argv[2] ?? 100), 2_000));
const ROUNDS = Math.max(1, Math.min(Number(process.argv[3] ?? 5), 50));
const CONCURRENCY = 20;
const WAIT_SECONDS = 10;
const TOKEN = BENCH_SERVICE_TOKEN;
const PROFILE_DIR = process.env.BENCH_SUBMIT_CPU_PROF;

interface SandboxKey {
  apiKey: string;
}

const ms = (n: number) => `${n.toFixed(1)} ms`;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const elapsedMs = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;

async function main(): Promise<void> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const counts = mkdtempSync(join(tmpdir(), 'keyward-bench-statements-'));
  await withBenchDatabase('submit', async (databaseUrl) => {
    const sandbox = await startProcess('pleo-sandbox', { NODE_ENV: 'test', LOG_LEVEL: 'warn', PLEO_SANDBOX_RATE_PER_MINUTE: '0' }, '/health/live');
    const children = [sandbox.child];
    try {
      const env = benchServiceEnv(databaseUrl, prefix, {
        PLEO_API_BASE_URL: sandbox.url,
        // One caller submits them all; the per-caller limit is not what is measured.
        KEYWARD_SUBMISSIONS_PER_CALLER_PER_MINUTE: '1000000',
      });
      // Workers first: their queues exist before intake's first key.submitted. Each counts its round trips to Postgres.
      const start = async (service: string) => {
        const counting = countingStatements(join(counts, service));
        const profiling = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${service}.cpuprofile`] : [];
        return startProcess(service, { ...env, ...counting.env }, '/health/ready', [...counting.nodeFlags, ...profiling], join(counts, `${service}.log`));
      };
      for (const service of ['validator', 'rotation']) children.push((await start(service)).child);
      const intake = await start('intake');
      children.push(intake.child);

      const services = { sandbox: sandbox.child, validator: children[1], rotation: children[2], intake: intake.child };
      const counted = { intake: intake.child, validator: children[1], rotation: children[2] };
      const statements = () => Promise.all(Object.entries(counted).map(([name, child]) => statementsSoFar(child, join(counts, name))));
      /**
       * What each service spent per submission over a phase: CPU time (on a busy machine, the cost
       * that waits for a core) and round trips to Postgres (the relays' empty rounds included).
       */
      const perSubmission = async (count: number, phase: () => Promise<void>): Promise<{ cpu: string; keyward?: number; statements: string }> => {
        const before = Object.values(services).map(cpuTimeMs);
        const serversBefore = serverCpuTimeMs();
        const sentBefore = await statements();
        await phase();
        const after = Object.values(services).map(cpuTimeMs);
        const serversAfter = serverCpuTimeMs();
        const sent = (await statements()).map((n, i) => (n - sentBefore[i]) / count);
        const each = Object.keys(services).map((name, i) => ({ name, ms: before[i] === undefined || after[i] === undefined ? undefined : (after[i] - before[i]) / count }));
        const servers =
          serversBefore && serversAfter ? { postgres: (serversAfter.postgres - serversBefore.postgres) / count, broker: (serversAfter.broker - serversBefore.broker) / count } : undefined;
        // What keyward's side of a submission costs: its three services, Postgres and RabbitMQ (not the sandbox, which also issues the bench's keys).
        const own = each.filter((e) => e.name !== 'sandbox').map((e) => e.ms);
        const keyward = servers && own.every((n) => n !== undefined) ? own.reduce<number>((a, b) => a + (b ?? 0), 0) + servers.postgres + servers.broker : undefined;
        return {
          cpu: [...each.map((e) => (e.ms === undefined ? `${e.name} n/a` : `${e.name} ${ms(e.ms)}`)), ...(servers ? [`Postgres ${ms(servers.postgres)}`, `RabbitMQ ${ms(servers.broker)}`] : [])].join(
            ', ',
          ),
          keyward,
          statements: `${Object.keys(counted)
            .map((name, i) => `${name} ${sent[i].toFixed(1)}`)
            .join(', ')}; together ${sent.reduce((a, b) => a + b, 0).toFixed(1)}`,
        };
      };

      const sandboxPool = new Pool(sandbox.url, { connections: CONCURRENCY, pipelining: 1 });
      const intakePool = new Pool(intake.url, { connections: CONCURRENCY, pipelining: 1 });

      const issueKey = async (): Promise<SandboxKey> => {
        const { statusCode, body } = await sandboxPool.request({ method: 'POST', path: '/_sandbox/keys', headers: { 'content-type': 'application/json' }, body: '{}' });
        if (statusCode !== 201) throw new Error(`sandbox key: ${statusCode}`);
        return (await body.json()) as SandboxKey;
      };
      const introspect = async (key: SandboxKey): Promise<number> => {
        const started = process.hrtime.bigint();
        const { statusCode, body } = await sandboxPool.request({
          method: 'GET',
          path: '/v1/introspect',
          headers: { authorization: `Basic ${Buffer.from(`${key.apiKey}:`).toString('base64')}` },
        });
        await body.arrayBuffer();
        if (statusCode !== 200) throw new Error(`introspect answered ${statusCode}`);
        return elapsedMs(started);
      };
      let tenants = 0;
      const unloadedTenants = new Set<string>();
      const submit = async (key: SandboxKey, record?: Set<string>): Promise<number> => {
        const tenantId = `bench-${prefix}-${++tenants}`;
        record?.add(tenantId);
        const started = process.hrtime.bigint();
        const { statusCode, body, headers } = await intakePool.request({
          method: 'PUT',
          path: `/v1/tenants/${tenantId}/pleo/key`,
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', prefer: `wait=${WAIT_SECONDS}` },
          body: JSON.stringify({ apiKey: key.apiKey }),
        });
        const answer = (await body.json()) as { status?: string };
        const took = elapsedMs(started);
        if (statusCode !== 200 || answer.status !== 'accepted' || headers['preference-applied'] !== `wait=${WAIT_SECONDS}`) {
          throw new Error(`submission answered ${statusCode} ${JSON.stringify(answer)}`);
        }
        return took;
      };

      // Warm-up: connections, prepared statements, JIT. Postgres plans a prepared statement afresh
      // on its first five executions on a connection: rounds at once bring every connection the
      // loaded phase will use past them, as a service that has run for a while is.
      for (let i = 0; i < 10; i++) await submit(await issueKey());
      for (let round = 0; round < 5; round++) await Promise.all((await Promise.all(Array.from({ length: CONCURRENCY }, () => issueKey()))).map((key) => submit(key)));
      const warmKey = await issueKey();
      for (let i = 0; i < 50; i++) await introspect(warmKey);

      // Unloaded: one at a time, baseline and submissions alternating in blocks of 10 so drift hits both alike.
      // The sandbox's share includes the baseline's calls and the keys it issues.
      const baseline: number[] = [];
      const unloaded: number[] = [];
      const unloadedCost = await perSubmission(SUBMISSIONS, async () => {
        for (let done = 0; done < SUBMISSIONS; done += 10) {
          const keys = await Promise.all(Array.from({ length: 10 }, () => issueKey()));
          for (const key of keys) baseline.push(await introspect(key));
          for (const key of keys) unloaded.push(await submit(key, unloadedTenants));
        }
      });

      // Loaded: CONCURRENCY submissions started together, ROUNDS times.
      const loaded: number[] = [];
      const loadedCost = await perSubmission(CONCURRENCY * ROUNDS, async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const keys = await Promise.all(Array.from({ length: CONCURRENCY }, () => issueKey()));
          loaded.push(...(await Promise.all(keys.map((key) => submit(key)))));
        }
      });

      const metrics = await (await fetch(`${intake.url}/metrics`)).text();
      const wakeups = metrics
        .split('\n')
        .filter((line) => line.startsWith('keyward_intake_prefer_wait_wakeups_total'))
        .map((line) => line.replace('keyward_intake_prefer_wait_wakeups_total', '').trim());

      const b = sorted(baseline);
      const u = sorted(unloaded);
      const l = sorted(loaded);
      const beyond = quantile(u, 0.5) - quantile(b, 0.5);
      const loadedRatio = quantile(l, 0.99) / quantile(u, 0.5);
      const verdict = (ok: boolean) => (ok ? 'pass' : 'MISS');
      const lines = [
        `bench:submit — PUT /v1/tenants/{tenant}/pleo/key, Prefer: wait=${WAIT_SECONDS}, until 200 accepted; sandbox, intake, validator, rotation in their own processes`,
        `machine: ${cpus().length} cores, load average ${loadavg()
          .map((n) => n.toFixed(1))
          .join(' / ')} (1/5/15 min) at the end`,
        ``,
        `baseline — the sandbox's own GET /v1/introspect, keep-alive, ${b.length} calls:  p50 ${ms(quantile(b, 0.5))}  p99 ${ms(quantile(b, 0.99))}`,
        `one submission at a time (${u.length}):  p50 ${ms(quantile(u, 0.5))}  p99 ${ms(quantile(u, 0.99))}  (p50 ${(quantile(u, 0.5) / quantile(b, 0.5)).toFixed(1)}× the baseline)`,
        `${CONCURRENCY} at once (${ROUNDS} rounds, ${l.length}):  p50 ${ms(quantile(l, 0.5))}  p99 ${ms(quantile(l, 0.99))}`,
        ``,
        `aim: one at a time, p50 ≤ 20 ms beyond the sandbox round trip:  +${ms(beyond)}  ${verdict(beyond <= 20)}`,
        `aim: ${CONCURRENCY} at once, p99 ≤ 2× the unloaded p50:  ${loadedRatio.toFixed(2)}×  ${verdict(loadedRatio <= 2)}`,
        ``,
        `CPU per submission, one at a time:  ${unloadedCost.cpu}`,
        `CPU per submission, ${CONCURRENCY} at once:  ${loadedCost.cpu}`,
        ...(loadedCost.keyward === undefined ? [] : [floorLine(loadedCost.keyward, quantile(u, 0.5))]),
        `round trips to Postgres per submission, one at a time:  ${unloadedCost.statements}`,
        `round trips to Postgres per submission, ${CONCURRENCY} at once:  ${loadedCost.statements}`,
        ...(wakeups.length ? [``, `intake's waiters woke by: ${wakeups.join(', ')}`] : []),
        ...(PROFILE_DIR ? [``, `CPU profiles of intake, validator and rotation written to ${PROFILE_DIR} when they exit`] : []),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      await sandboxPool.close();
      await intakePool.close();
      // Every line is written once the services have exited.
      await stopProcesses(children);
      process.stdout.write(`${stagesOf(counts, unloadedTenants)}\n`);
    } finally {
      await stopProcesses(children);
      await dropTopology(prefix);
      rmSync(counts, { recursive: true, force: true });
    }
  });
}

/**
 * What no scheduling can beat: a round of CONCURRENCY submissions started together needs all their
 * CPU, and the machine gives at most one core-second a second per core, so the round's slowest
 * answer comes no sooner than CONCURRENCY × keyward's CPU per submission / cores after the start.
 */
function floorLine(keywardMsPerSubmission: number, unloadedP50: number): string {
  const cores = cpus().length;
  const floor = (CONCURRENCY * keywardMsPerSubmission) / cores;
  const allowed = (2 * unloadedP50 * cores) / CONCURRENCY;
  return (
    `the CPU floor of ${CONCURRENCY} at once: ${CONCURRENCY} × ${ms(keywardMsPerSubmission)} (intake, validator, rotation, Postgres, RabbitMQ) / ${cores} cores = ` +
    `${ms(floor)} before a round's slowest answer, ${(floor / unloadedP50).toFixed(2)}× the unloaded p50; 2× needs ≤ ${ms(allowed)} a submission on ${cores} cores`
  );
}

/** A service's log lines of the given tenants, with the time each was written. */
function logLines(dir: string, service: string, tenants: Set<string>): { at: number; tenantId: string; msg: string; durationMs?: number }[] {
  return readFileSync(join(dir, `${service}.log`), 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        const parsed = JSON.parse(line) as { time: string; tenantId?: string; msg: string; durationMs?: number };
        return parsed.tenantId && tenants.has(parsed.tenantId) ? [{ ...parsed, tenantId: parsed.tenantId, at: Date.parse(parsed.time) }] : [];
      } catch {
        return [];
      }
    });
}

/**
 * Where the time of a submission one at a time goes, from the services' own log lines (ms
 * resolution): the median of each stage over the phase's submissions.
 */
function stagesOf(dir: string, tenants: Set<string>): string {
  const marks = new Map<string, Record<string, number>>();
  const mark = (tenantId: string, name: string, at: number) => {
    const of = marks.get(tenantId) ?? {};
    of[name] ??= at;
    marks.set(tenantId, of);
  };
  for (const line of logLines(dir, 'intake', tenants)) {
    if (line.msg === 'Key submitted for validation') mark(line.tenantId, 'submitted', line.at);
    if (line.msg === 'HTTP request' && line.durationMs !== undefined) {
      mark(line.tenantId, 'received', line.at - line.durationMs);
      mark(line.tenantId, 'answered', line.at);
    }
  }
  for (const line of logLines(dir, 'validator', tenants)) if (line.msg === 'Key validated') mark(line.tenantId, 'validated', line.at);
  for (const line of logLines(dir, 'rotation', tenants)) if (line.msg === 'Credential activated') mark(line.tenantId, 'activated', line.at);
  const stages: [string, string, string][] = [
    ['received', 'submitted', 'intake: request in → submission committed ("Key submitted for validation")'],
    ['submitted', 'validated', 'validator: → key.submitted taken, Pleo asked, verdict committed ("Key validated")'],
    ['validated', 'activated', 'rotation: → key.validated taken, activation decided ("Credential activated", before its commit)'],
    ['activated', 'answered', 'intake: → rotation committed, NOTIFY, submission read again, answer sent ("HTTP request")'],
  ];
  const complete = [...marks.values()].filter((m) => stages.every(([from, to]) => m[from] !== undefined && m[to] !== undefined));
  if (complete.length === 0) return 'where the time goes: no complete log trail found';
  const median = (xs: number[]) => quantile(sorted(xs), 0.5);
  return [
    `where the time goes, one at a time (median over ${complete.length} submissions, from the services' log lines, ms resolution):`,
    ...stages.map(([from, to, what]) => `  ${String(median(complete.map((m) => m[to] - m[from]))).padStart(3)} ms  ${what}`),
  ].join('\n');
}

/** The run's exchange and queues, so the shared broker keeps nothing of it. */
async function dropTopology(prefix: string): Promise<void> {
  // A broker that accepts the socket but never answers must not hang the benchmark's exit.
  const connection = await connect(BENCH_AMQP_URL, { timeout: 10_000 }).catch((error: unknown) => {
    process.stderr.write(`bench:submit: could not reach RabbitMQ to delete the run's exchange and queues (${String(error)})\n`);
    return undefined;
  });
  if (!connection) return;
  try {
    await deleteTopology(await connection.createChannel(), new TopologyNames(prefix));
  } catch (error) {
    process.stderr.write(`bench:submit: could not delete the run's exchange and queues (${String(error)})\n`);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

runBenchmark('submit', main);
