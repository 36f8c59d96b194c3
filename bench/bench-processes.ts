import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from '../libs/testing/src/free-port';
import { BENCH_AMQP_URL } from './bench-database';

// dist/bench → dist: the services are run from the same build.
const dist = join(__dirname, '..');

/** The service token the benches' callers present (`bench=<token>` in KEYWARD_SERVICE_TOKENS). */
export const BENCH_SERVICE_TOKEN = 'bench-service-token-0123456789';

/**
 * What every keyward service a bench starts shares: the bench's database, the local broker under
 * `prefix`, a fresh master key, the bench's service token, log lines at `info`; `extra` on top.
 */
export function benchServiceEnv(databaseUrl: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: databaseUrl,
    AMQP_URL: BENCH_AMQP_URL,
    KEYWARD_AMQP_PREFIX: prefix,
    KEYWARD_MASTER_KEY: randomBytes(32).toString('base64'),
    KEYWARD_SERVICE_TOKENS: `bench=${BENCH_SERVICE_TOKEN}`,
    ...extra,
  };
}

export interface BenchProcess {
  url: string;
  child: ChildProcess;
}

/**
 * One service from dist/apps as its own process, as deployed; resolves once `readyPath` answers
 * 200. Its log lines (stdout) go to `logFile` when given, else nowhere.
 */
export async function startProcess(service: string, env: Record<string, string>, readyPath: string, nodeFlags: string[] = [], logFile?: string): Promise<BenchProcess> {
  const port = await freePort();
  const out = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [...nodeFlags, join(dist, 'apps', service, 'main.js')], {
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', out, 'inherit'],
  });
  if (typeof out === 'number') closeSync(out); // the child holds its own copy
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${service} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}${readyPath}`)).ok) return { url, child };
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${service} not ready`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** SIGTERM to each, then waits until all have exited. */
export async function stopProcesses(children: ChildProcess[]): Promise<void> {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => c.once('exit', r))));
}

/** The q-quantile of ascending samples (nearest rank). */
export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * CPU time (user + system) a child process has used so far, in ms, from Linux's /proc; undefined
 * elsewhere. Clock ticks are taken as 100 per second (Linux's USER_HZ on every common build).
 */
export function cpuTimeMs(child: ChildProcess): number | undefined {
  return child.pid === undefined ? undefined : cpuTimeOfPid(child.pid);
}

function cpuTimeOfPid(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (ms, as `cpuTimeMs`) used so far by the machine's Postgres (every process of the
 * cluster: backends, WAL writer, checkpointer) and RabbitMQ (the Erlang VM), found by name in
 * /proc; undefined where there is no /proc. A process that exits in between takes its time with
 * it, so compare only spans in which none does (a bench's own connections stay open).
 */
export function serverCpuTimeMs(): { postgres: number; broker: number } | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  const total = { postgres: 0, broker: 0 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let name: string;
    try {
      name = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
    } catch {
      continue; // gone meanwhile
    }
    const server = name === 'postgres' ? 'postgres' : name === 'beam.smp' ? 'broker' : undefined;
    if (server) total[server] += cpuTimeOfPid(Number(entry)) ?? 0;
  }
  return total;
}

/** The preload that counts a service's round trips to Postgres (`statement-counter.ts`). */
export function countingStatements(file: string): { env: Record<string, string>; nodeFlags: string[] } {
  return { env: { KEYWARD_BENCH_STATEMENTS_FILE: file }, nodeFlags: ['-r', join(__dirname, 'statement-counter.js')] };
}

/** How many round trips to Postgres a child started with `countingStatements(file)` has made so far. */
export async function statementsSoFar(child: ChildProcess, file: string): Promise<number> {
  const asked = existsSync(file) ? Number(readFileSync(file, 'utf8').split(' ')[0]) : 0;
  child.kill('SIGUSR2');
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [answered, count] = existsSync(file) ? readFileSync(file, 'utf8').split(' ').map(Number) : [0, 0];
    if (answered > asked) return count;
    if (Date.now() > deadline) throw new Error(`no statement count from process ${child.pid}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** CPU time per event (µs) over a timed phase: this process (the code measured, or a raw loop) and the machine's Postgres and RabbitMQ. */
export interface PhaseCost {
  node: number;
  postgres?: number;
  broker?: number;
}

export function costMeter(): (events: number) => PhaseCost {
  const node = process.cpuUsage();
  const servers = serverCpuTimeMs();
  return (events) => {
    const used = process.cpuUsage(node);
    const after = serverCpuTimeMs();
    const perEvent = (ms: number) => (ms * 1_000) / events;
    return {
      node: (used.user + used.system) / events,
      ...(servers && after ? { postgres: perEvent(after.postgres - servers.postgres), broker: perEvent(after.broker - servers.broker) } : {}),
    };
  };
}

export function describeCost(cost: PhaseCost): string {
  const us = (n: number | undefined) => (n === undefined ? 'n/a' : `${n.toFixed(0)} µs`);
  const total = cost.node + (cost.postgres ?? 0) + (cost.broker ?? 0);
  return `this process ${us(cost.node)}, Postgres ${us(cost.postgres)}, RabbitMQ ${us(cost.broker)}; together ${us(total)}`;
}
