import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { Client } from 'pg';
import { freePort } from './free-port';

/**
 * A RabbitMQ node and a Postgres cluster of a test's own, on free ports, for fault tests
 * (restarts, outages, terminated backends) that must never touch the shared services.
 * Nothing is skipped: when a node cannot start, the call throws with the reason and the log tail.
 */

export interface PrivateBroker {
  /** amqp://guest:guest@127.0.0.1:<port> */
  url: string;
  port: number;
  nodeName: string;
  /** Stops the RabbitMQ application (connections close, the node process stays): the broker is down. */
  stop(): Promise<void>;
  /** Starts the application again and waits until it accepts AMQP connections. */
  start(): Promise<void>;
  /** stop(), wait `downMs`, start(). */
  restart(downMs?: number): Promise<void>;
  /** Like restart but stops and starts the whole node process (what a host reboot or `systemctl restart` does). */
  restartNode(downMs?: number): Promise<void>;
  /** Stops the node for good and removes its files. Safe to call twice. */
  shutdown(): Promise<void>;
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth) */
  adminUrl: string;
  port: number;
  /** A URL on another database of this cluster. */
  urlFor(database: string): string;
  /** Creates a database migrated like the tests' template (all keyward migrations) and returns its URL. */
  createMigratedDatabase(name?: string): Promise<string>;
  /** Fast shutdown: every connection is cut, new ones are refused until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stop(), wait `downMs`, start(). */
  restart(downMs?: number): Promise<void>;
  /** pg_terminate_backend of every connection but the caller's (optionally one database only); returns how many. */
  terminateBackends(database?: string): Promise<number>;
  shutdown(): Promise<void>;
}

const RABBITMQ_SERVER = process.env.KEYWARD_TEST_RABBITMQ_SERVER ?? '/usr/sbin/rabbitmq-server';
const RABBITMQCTL = process.env.KEYWARD_TEST_RABBITMQCTL ?? '/usr/sbin/rabbitmqctl';
const PG_BIN = process.env.KEYWARD_TEST_PG_BIN ?? findPgBin();

function findPgBin(): string {
  for (const version of ['17', '16', '15', '14', '13']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  return '/usr/lib/postgresql/15/bin';
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Best effort for a test process that dies without calling shutdown(): no node outlives it.
const cleanups = new Set<() => void>();
let exitHookInstalled = false;
function onProcessExit(cleanup: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => cleanups.forEach((c) => c()));
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

function killPidFile(pidFile: string): void {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0].trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

async function amqpAnswers(url: string): Promise<boolean> {
  try {
    const connection = await connect(url, { timeout: 2_000 });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

export async function startPrivateBroker(options: { name?: string; startTimeoutMs?: number } = {}): Promise<PrivateBroker> {
  if (!existsSync(RABBITMQ_SERVER)) {
    throw new Error(`A private RabbitMQ node is needed for this test, and ${RABBITMQ_SERVER} does not exist (install rabbitmq-server or set KEYWARD_TEST_RABBITMQ_SERVER).`);
  }
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const port = await freePort();
  const distPort = await freePort();
  const nodeName = `${options.name ?? 'kwtest'}${randomBytes(3).toString('hex')}@localhost`;
  const dir = mkdtempSync(join(tmpdir(), 'keyward-broker-'));
  mkdirSync(join(dir, 'log'));
  mkdirSync(join(dir, 'mnesia'));
  writeFileSync(join(dir, 'plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users = none\n`);
  if (isRoot()) {
    // The server drops to the rabbitmq user, which must own its files.
    execFileSync('chown', ['-R', 'rabbitmq:rabbitmq', dir]);
    execFileSync('chmod', ['755', dir]);
  }
  const env: NodeJS.ProcessEnv = {
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'plugins'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const ctl = (...args: string[]) => run(RABBITMQCTL, ['-n', nodeName, ...args], { env, timeoutMs: startTimeoutMs });
  const why = () => `log of ${nodeName}:\n${tail(join(dir, 'log', `${nodeName}.log`))}`;

  const waitForAmqp = async () => {
    const deadline = Date.now() + startTimeoutMs;
    while (!(await amqpAnswers(url))) {
      if (Date.now() > deadline) throw new Error(`private RabbitMQ ${nodeName} did not accept AMQP on ${port} within ${startTimeoutMs} ms; ${why()}`);
      await sleep(200);
    }
  };
  const bootNode = async () => {
    try {
      await run(RABBITMQ_SERVER, ['-detached'], { env });
      // A detached node takes a while to register with epmd; await_startup fails until it has.
      const deadline = Date.now() + startTimeoutMs;
      for (;;) {
        try {
          await ctl('await_startup', '--timeout', String(Math.ceil(startTimeoutMs / 1000)));
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(500);
        }
      }
    } catch (error) {
      throw new Error(`private RabbitMQ ${nodeName} did not start: ${(error as Error).message}\n${why()}`, { cause: error });
    }
    await waitForAmqp();
  };

  const unregister = onProcessExit(() => killPidFile(join(dir, 'pid')));
  let gone = false;
  const broker: PrivateBroker = {
    url,
    port,
    nodeName,
    stop: async () => {
      await ctl('stop_app');
    },
    start: async () => {
      await ctl('start_app');
      await waitForAmqp();
    },
    restart: async (downMs = 0) => {
      await broker.stop();
      await sleep(downMs);
      await broker.start();
    },
    restartNode: async (downMs = 0) => {
      await ctl('shutdown');
      await sleep(downMs);
      await bootNode();
    },
    shutdown: async () => {
      if (gone) return;
      gone = true;
      await ctl('shutdown').catch(() => killPidFile(join(dir, 'pid')));
      unregister();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await bootNode();
  } catch (error) {
    await broker.shutdown().catch(() => undefined);
    throw error;
  }
  return broker;
}

export async function startPrivatePostgres(options: { startTimeoutMs?: number } = {}): Promise<PrivatePostgres> {
  const pgCtl = join(PG_BIN, 'pg_ctl');
  if (!existsSync(pgCtl)) {
    throw new Error(`A private Postgres cluster is needed for this test, and ${pgCtl} does not exist (install postgresql or set KEYWARD_TEST_PG_BIN).`);
  }
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'keyward-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'log');
  if (isRoot()) {
    // initdb refuses to run as root.
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const asOwner = (file: string, args: string[]) =>
    isRoot() ? run('runuser', ['-u', 'postgres', '--', file, ...args], { timeoutMs: startTimeoutMs }) : run(file, args, { timeoutMs: startTimeoutMs });
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const urlFor = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const why = () => `log:\n${tail(log)}`;

  const start = async () => {
    try {
      await asOwner(pgCtl, ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, '-l', log, '-w', '-t', String(Math.ceil(startTimeoutMs / 1000)), 'start']);
    } catch (error) {
      throw new Error(`private Postgres on ${port} did not start: ${(error as Error).message}\n${why()}`, { cause: error });
    }
  };
  const stop = async () => {
    await asOwner(pgCtl, ['-D', data, '-m', 'fast', '-w', 'stop']);
  };

  const unregister = onProcessExit(() => {
    try {
      execFileSync(isRoot() ? 'runuser' : pgCtl, isRoot() ? ['-u', 'postgres', '--', pgCtl, '-D', data, '-m', 'immediate', 'stop'] : ['-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
    } catch {
      /* already stopped */
    }
  });
  let gone = false;
  const cluster: PrivatePostgres = {
    adminUrl,
    port,
    urlFor,
    createMigratedDatabase: async (name = `keyward_${randomBytes(4).toString('hex')}`) => {
      const admin = new Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE "${name}"`);
      await admin.end();
      // Loaded lazily: persistence pulls in TypeORM, which most users of this helper do not need.
      const { migrate } = await import('../../persistence/src/data-source');
      await migrate(urlFor(name));
      return urlFor(name);
    },
    stop,
    start,
    restart: async (downMs = 0) => {
      await stop();
      await sleep(downMs);
      await start();
    },
    terminateBackends: async (database?: string) => {
      const admin = new Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        const rows = await admin.query(
          `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
            WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND ($1::text IS NULL OR datname = $1)`,
          [database ?? null],
        );
        return rows.rows.filter((r: { done: boolean }) => r.done).length;
      } finally {
        await admin.end();
      }
    },
    shutdown: async () => {
      if (gone) return;
      gone = true;
      await asOwner(pgCtl, ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      unregister();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await asOwner(join(PG_BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await start();
  } catch (error) {
    await cluster.shutdown().catch(() => undefined);
    throw new Error(`private Postgres could not be created: ${(error as Error).message}`, { cause: error });
  }
  return cluster;
}
