import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { Client } from 'pg';
import { freePort } from './free-port';

/**
 * A RabbitMQ or Postgres of a test's own, for what must never happen to the shared services:
 * restarts, outages, version checks. Where a container engine answers, a container of the images
 * compose uses (testcontainers); where none does, a local server process on a free port (the
 * recipe in PRIVATE-SERVICES.md), and it says which. Either way the URL stays the same across
 * stop/start/restart, so a service under test can reconnect to it. ADR 0026.
 * The shape follows the process helper of private-services.ts (branch `retry`): url/adminUrl,
 * port, stop, start, restart, shutdown.
 */
interface IsolatedService {
  /** `container` (testcontainers) or `process` (a local server); said once on start-up. */
  readonly runsIn: 'container' | 'process';
  /** Down: connections cut, port closed, data kept. */
  stop(): Promise<void>;
  /** Up again on the same port, with the same data. */
  start(): Promise<void>;
  restart(): Promise<void>;
  readonly port: number;
  /** Gone, with its data. Safe to call twice. */
  shutdown(): Promise<void>;
}

export interface IsolatedBroker extends IsolatedService {
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
}

export interface IsolatedPostgres extends IsolatedService {
  /** On the `postgres` database (trust). */
  readonly adminUrl: string;
  /** A URL on another database of this server. */
  urlFor(database: string): string;
  /** Major version of the server, e.g. 15. */
  readonly serverMajorVersion: number;
}

/** The images docker-compose.yml uses; built offline by deploy/images/offline-base.sh (ADR 0025). */
export const PRIVATE_SERVICE_IMAGES = { rabbitmq: 'rabbitmq:3.10-management', postgres: 'postgres:15-bookworm' } as const;

const run = promisify(execFile);
const once = (action: () => Promise<void>): (() => Promise<void>) => {
  let done: Promise<void> | undefined;
  return () => (done ??= action());
};
/** The same server URL with another database name (as withDatabase in test-infrastructure.ts). */
function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
const say = (message: string): void => void process.stderr.write(`keyward isolated services: ${message}\n`);

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((done) => setTimeout(done, 250));
  }
  throw new Error(`${what} did not answer within ${timeoutMs} ms`);
}

const brokerAnswers = (url: string) => async (): Promise<boolean> => {
  const connection = await connect(url, { timeout: 2_000 });
  await connection.close();
  return true;
};

const postgresAnswers = (url: string) => async (): Promise<boolean> => {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
};

async function serverMajorVersion(url: string): Promise<number> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version_num: string }>('SHOW server_version_num');
    return Math.floor(Number(rows[0].server_version_num) / 10_000);
  } finally {
    await client.end();
  }
}

let engine: Promise<boolean> | undefined;
/** Whether a container engine answers (asked once per process; KEYWARD_TEST_CONTAINERS=false says no). */
export function containerEngineAnswers(): Promise<boolean> {
  engine ??= (async () => {
    if (process.env.KEYWARD_TEST_CONTAINERS === 'false') return false;
    // Ryuk, testcontainers' reaper, is an image from Docker Hub; each helper removes its own container instead.
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
    try {
      const { getContainerRuntimeClient } = await import('testcontainers');
      const client = await Promise.race([getContainerRuntimeClient(), new Promise<never>((_, fail) => setTimeout(() => fail(new Error('timeout')), 10_000))]);
      return Boolean(client);
    } catch {
      return false;
    }
  })();
  return engine;
}

/** Labels on every container these helpers start, so `.ci/run` can remove leftovers. */
const LABELS = { 'keyward.test': 'private-service' };

async function startContainer(image: string, containerPort: number, env: Record<string, string>, ready: RegExp, times: number) {
  const { GenericContainer, Wait } = await import('testcontainers');
  const hostPort = await freePort();
  // A fixed host port: the URL a service under test holds stays valid after a restart.
  const container = await new GenericContainer(image)
    .withEnvironment(env)
    .withLabels(LABELS)
    .withExposedPorts({ container: containerPort, host: hostPort })
    .withWaitStrategy(Wait.forLogMessage(ready, times))
    .withStartupTimeout(120_000)
    .start();
  const id = container.getId();
  const docker = (...args: string[]) => run('docker', [...args, id]);
  return { container, hostPort, stop: () => docker('stop', '-t', '10'), start: () => docker('start'), dispose: () => container.stop({ remove: true, removeVolumes: true }) };
}

/** A RabbitMQ of the test's own (guest/guest). */
export async function startIsolatedBroker(): Promise<IsolatedBroker> {
  if (await containerEngineAnswers()) {
    const { hostPort, stop, start, dispose } = await startContainer(PRIVATE_SERVICE_IMAGES.rabbitmq, 5672, {}, /Server startup complete/, 1);
    const url = `amqp://guest:guest@127.0.0.1:${hostPort}`;
    say(`RabbitMQ in a container (${PRIVATE_SERVICE_IMAGES.rabbitmq}) on 127.0.0.1:${hostPort}`);
    const ready = () => until('private RabbitMQ', brokerAnswers(url), 60_000);
    await ready();
    return {
      runsIn: 'container',
      url,
      port: hostPort,
      stop: async () => void (await stop()),
      start: async () => {
        await start();
        await ready();
      },
      restart: async () => {
        await stop();
        await start();
        await ready();
      },
      shutdown: once(async () => void (await dispose())),
    };
  }
  say('no container engine answers: RabbitMQ as a local process (rabbitmq-server) on a free port');
  return startBrokerProcess();
}

/** A Postgres of the test's own (user postgres, trust). */
export async function startIsolatedPostgres(): Promise<IsolatedPostgres> {
  if (await containerEngineAnswers()) {
    const { hostPort, stop, start, dispose } = await startContainer(
      PRIVATE_SERVICE_IMAGES.postgres,
      5432,
      { POSTGRES_HOST_AUTH_METHOD: 'trust' },
      // Once for the initialising server, once for the real one (as the official image).
      /database system is ready to accept connections/,
      2,
    );
    const adminUrl = `postgres://postgres@127.0.0.1:${hostPort}/postgres`;
    say(`PostgreSQL in a container (${PRIVATE_SERVICE_IMAGES.postgres}) on 127.0.0.1:${hostPort}`);
    const ready = () => until('private PostgreSQL', postgresAnswers(adminUrl), 60_000);
    await ready();
    return {
      runsIn: 'container',
      adminUrl,
      port: hostPort,
      urlFor: (database) => withDatabase(adminUrl, database),
      serverMajorVersion: await serverMajorVersion(adminUrl),
      stop: async () => void (await stop()),
      start: async () => {
        await start();
        await ready();
      },
      restart: async () => {
        await stop();
        await start();
        await ready();
      },
      shutdown: once(async () => void (await dispose())),
    };
  }
  say('no container engine answers: PostgreSQL as a local process (initdb, pg_ctl) on a free port');
  return startPostgresProcess();
}

// --- local processes (PRIVATE-SERVICES.md); need root and the Debian packages -------------------

async function startBrokerProcess(): Promise<IsolatedBroker> {
  const port = await freePort();
  const name = `kwtest${port}@localhost`;
  const dir = mkdtempSync(join(tmpdir(), 'keyward-broker-'));
  for (const sub of ['log', 'mnesia']) execFileSync('mkdir', ['-p', join(dir, sub)]);
  writeFileSync(join(dir, 'plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users = none\n`);
  execFileSync('chown', ['-R', 'rabbitmq:rabbitmq', dir]);
  chmodSync(dir, 0o755);
  const env = {
    ...process.env,
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_NODENAME: name,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(await freePort()),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'plugins'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const ctl = (...args: string[]) => run('rabbitmqctl', ['-n', name, ...args], { env });
  const dispose = async (): Promise<void> => {
    await ctl('shutdown').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  await run('rabbitmq-server', ['-detached'], { env });
  // -detached returns before the node registers with epmd; until then await_startup says "not running".
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  await until('private RabbitMQ process', async () => (await ctl('await_startup', '--timeout', '10'), true), 120_000).catch(async (error: unknown) => {
    await dispose();
    throw error;
  });
  return {
    runsIn: 'process',
    url,
    port,
    stop: async () => void (await ctl('stop_app')),
    start: async () => void (await ctl('start_app')),
    restart: async () => {
      await ctl('stop_app');
      await ctl('start_app');
    },
    shutdown: once(dispose),
  };
}

async function startPostgresProcess(): Promise<IsolatedPostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'keyward-pg-'));
  chmodSync(dir, 0o755);
  execFileSync('chown', ['postgres', dir]);
  const bin = (tool: string) => `/usr/lib/postgresql/15/bin/${tool}`;
  const asPostgres = (command: string) => run('su', ['postgres', '-c', command]);
  await asPostgres(`${bin('initdb')} -D ${dir}/data -A trust -U postgres >/dev/null`);
  const pgctl = (action: string) => asPostgres(`${bin('pg_ctl')} -D ${dir}/data -w -o "-p ${port} -k ${dir} -c listen_addresses=127.0.0.1" -l ${dir}/log ${action}`);
  await pgctl('start').catch(async (error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    runsIn: 'process',
    adminUrl,
    port,
    urlFor: (database) => withDatabase(adminUrl, database),
    serverMajorVersion: await serverMajorVersion(adminUrl),
    stop: async () => void (await pgctl('stop -m fast')),
    start: async () => void (await pgctl('start')),
    restart: async () => void (await pgctl('restart -m fast')),
    shutdown: once(async () => {
      await pgctl('stop -m immediate').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }),
  };
}
