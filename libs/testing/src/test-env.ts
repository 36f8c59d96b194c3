import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { ChannelModel, connect } from 'amqplib';
import { Client, Pool } from 'pg';
import { KeywardConfig, loadConfig, ServiceName } from '@keyward/config';
import { KeywardLogger, SecretRegistry, secretRegistry } from '@keyward/observability';
import { deleteTopology, TopologyNames } from '@keyward/messaging';
import { createDataSource } from '@keyward/persistence';
import type { DataSource } from 'typeorm';
import { withDatabase } from './test-infrastructure';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through jest (the global set-up provides it)`);
  return value;
}

export interface TestDatabase {
  url: string;
  name: string;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** A migrated database of this test file's own, cloned from the run's template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = required('KEYWARD_TEST_ADMIN_DATABASE_URL');
  const name = `keyward_t_${required('KEYWARD_TEST_RUN_ID')}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // CREATE DATABASE from a template fails if another session is cloning it at the same moment.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${required('KEYWARD_TEST_TEMPLATE_DATABASE')}"`);
        break;
      } catch (error) {
        if (attempt >= 20 || !/being accessed by other users/.test(String(error))) throw error;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const pool = new Pool({ connectionString: url, max: 3 });
  // An idle connection cut when the database is dropped must not crash the test process.
  pool.on('error', () => undefined);
  return {
    url,
    name,
    query: async <T>(sql: string, params?: unknown[]) => (await pool.query(sql, params)).rows as T[],
    drop: async () => {
      await pool.end().catch(() => undefined);
      const a = new Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

export function testAmqpUrl(): string {
  return required('KEYWARD_TEST_AMQP_URL');
}

/**
 * A connection to the test broker that cannot take the test file down: amqplib emits `error`
 * (a heartbeat timeout on a starved machine, a broker restart) on the connection, and an
 * `error` event nobody listens to ends the whole jest worker. The error is reported on stderr;
 * the test that uses the connection still sees its next call fail.
 */
export async function connectTestBroker(url = testAmqpUrl()): Promise<ChannelModel> {
  const connection = await connect(url);
  connection.on('error', (error: Error) => process.stderr.write(`test broker connection: ${error.message}\n`));
  return connection;
}

/** A prefix of the test's own, so its exchange and queues are separate from every other test's. */
export function testPrefix(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/** Deletes a test's topology; `legacyRetryTiersMs` also deletes pre-ADR-0013 delay queues a test declared. */
export async function dropTopology(prefix: string, legacyRetryTiersMs: number[] = []): Promise<void> {
  const connection = await connectTestBroker();
  const channel = await connection.createChannel();
  await deleteTopology(channel, new TopologyNames(prefix)).catch(() => undefined);
  for (const subscriber of ['validator', 'rotation', 'monitor', 'notifications']) {
    for (const delay of legacyRetryTiersMs) await channel.deleteQueue(`${prefix}.${subscriber}.retry.${delay}ms`).catch(() => undefined);
  }
  await connection.close().catch(() => undefined);
}

export const TEST_MASTER_KEY = randomBytes(32).toString('base64');

/** Configuration as a deployed service would load it, pointed at this test's database and prefix. */
export function testConfig(service: ServiceName, env: { databaseUrl: string; prefix: string } & Record<string, string | string[] | undefined>): KeywardConfig {
  const { databaseUrl, prefix, ...rest } = env;
  return loadConfig(service, {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    AMQP_URL: testAmqpUrl(),
    KEYWARD_AMQP_PREFIX: prefix,
    KEYWARD_MASTER_KEY: TEST_MASTER_KEY,
    KEYWARD_SERVICE_TOKENS: 'dev=dev-service-token,ops=ops-service-token-0001',
    LOG_LEVEL: 'debug',
    ...(rest as Record<string, string>),
  });
}

export interface CapturedLogs {
  logger: KeywardLogger;
  lines(): string[];
  text(): string;
}

/** A logger that keeps every line in memory, for asserting what an operator would read. */
export function captureLogs(service = 'test', registry: SecretRegistry = secretRegistry): CapturedLogs {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = KeywardLogger.create(service, 'trace', { destination, registry });
  return {
    logger,
    lines: () => chunks.join('').split('\n').filter(Boolean),
    text: () => chunks.join(''),
  };
}

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError instanceof Error ? lastError.message : inspect(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh canary value: key-shaped, unique, easy to search for. */
export function canaryKey(label = 'canary'): string {
  return `pleo_${label}_${randomBytes(16).toString('hex')}`;
}

/**
 * A migrated database of the describe block's own with a small pool on it, created before the
 * block's tests and dropped after them. Call it in the block's body; its fields are set once the
 * block's first `beforeAll` ran.
 */
export function databaseOfTheBlock(poolSize = 2): { db: TestDatabase; dataSource: DataSource } {
  const block = {} as { db: TestDatabase; dataSource: DataSource };
  beforeAll(async () => {
    block.db = await createTestDatabase();
    block.dataSource = await createDataSource({ url: block.db.url, poolSize }).initialize();
  });
  afterAll(async () => {
    await block.dataSource?.destroy();
    await block.db?.drop();
  });
  return block;
}
