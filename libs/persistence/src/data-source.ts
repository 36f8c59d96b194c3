import * as pg from 'pg';
import { DataSource } from 'typeorm';
import { ENTITIES } from './entities';
import { KeywardClient } from './keyward-client';
import { Foundation1764200000000 } from './migrations/1764200000000-foundation';
import { SecretVersionDisabled1764210000003 } from './migrations/1764210000003-secret-version-disabled';
import { RetentionIndexes1764220000000 } from './migrations/1764220000000-retention-indexes';
import { ScheduledRetries1764300000000 } from './migrations/1764300000000-scheduled-retries';
import { OwnerRecords1764310000000 } from './migrations/1764310000000-owner-records';
import { AuditCheckpointsAndRefusals1764330000000 } from './migrations/1764330000000-audit-checkpoints-and-refusals';
import { GatewayRateLeases1764340000000 } from './migrations/1764340000000-gateway-rate-leases';
import { ConnectPageAndRedeliveries1764350000000 } from './migrations/1764350000000-connect-page-and-redeliveries';
import { SubmissionDecidedNotify1764360000000 } from './migrations/1764360000000-submission-decided-notify';
import { RateBudgetLeases1764370000000 } from './migrations/1764370000000-rate-budget-leases';
import { ProbeSchedulingIndexes1764380000000 } from './migrations/1764380000000-probe-scheduling-indexes';
import { NewestPendingSubmissions1764390000000 } from './migrations/1764390000000-newest-pending-submissions';
import { CheckAnsweredNotify1764400000000 } from './migrations/1764400000000-check-answered-notify';
import { OutboxNotifyNamesTheWriter1764410000000 } from './migrations/1764410000000-outbox-notify-names-the-writer';
import { OutboxRowsPublishedByTheirWriter1764420000000 } from './migrations/1764420000000-outbox-rows-published-by-their-writer';
import { FailureWindowSummary1764430000000 } from './migrations/1764430000000-failure-window-summary';

const MIGRATIONS = [
  Foundation1764200000000,
  SecretVersionDisabled1764210000003,
  RetentionIndexes1764220000000,
  ScheduledRetries1764300000000,
  OwnerRecords1764310000000,
  AuditCheckpointsAndRefusals1764330000000,
  GatewayRateLeases1764340000000,
  ConnectPageAndRedeliveries1764350000000,
  SubmissionDecidedNotify1764360000000,
  RateBudgetLeases1764370000000,
  ProbeSchedulingIndexes1764380000000,
  NewestPendingSubmissions1764390000000,
  CheckAnsweredNotify1764400000000,
  OutboxNotifyNamesTheWriter1764410000000,
  OutboxRowsPublishedByTheirWriter1764420000000,
  FailureWindowSummary1764430000000,
];

export interface DatabaseOptions {
  url: string;
  poolSize?: number;
  applicationName?: string;
}

/** The pg pool behind each DataSource made by `createDataSource`, once it is initialized. */
const POOLS = new WeakMap<DataSource, { pool?: pg.Pool }>();

/**
 * The pg pool a DataSource made by `createDataSource` runs on, for statements that need pg's own
 * API (named prepared statements outside a transaction). Undefined before `initialize()` and for
 * a DataSource made elsewhere. Obtained through TypeORM's documented `driver` option (ADR 0036),
 * not from the driver's fields.
 */
export function pgPool(dataSource: DataSource): pg.Pool | undefined {
  return POOLS.get(dataSource)?.pool;
}

/**
 * `pg` as TypeORM's `driver` option, with a Pool that records itself in `holder`: TypeORM builds
 * its one pool with `new driver.Pool(options)`, so keyward knows that pool without reading
 * TypeORM's internals. Everything else is pg's own (the prototype).
 */
function recordingDriver(holder: { pool?: pg.Pool }): typeof pg {
  class RecordedPool extends pg.Pool {
    constructor(config?: pg.PoolConfig) {
      super(config);
      holder.pool = this;
    }
  }
  return Object.create(pg, { Pool: { value: RecordedPool, enumerable: true } }) as typeof pg;
}

/** Migrations only: `synchronize` is never on. */
export function createDataSource(options: DatabaseOptions): DataSource {
  const holder: { pool?: pg.Pool } = {};
  const dataSource = new DataSource({
    type: 'postgres',
    driver: recordingDriver(holder),
    url: options.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    applicationName: options.applicationName ?? 'keyward',
    extra: { max: options.poolSize ?? 10, connectionTimeoutMillis: 5_000, Client: KeywardClient },
  });
  POOLS.set(dataSource, holder);
  return dataSource;
}

export class DatabaseUnreachableError extends Error {
  constructor(
    readonly where: string,
    cause: unknown,
  ) {
    super(`PostgreSQL is not reachable at ${where} (${(cause as Error)?.message ?? cause}). ` + 'Start it (docker compose up -d postgres, or pg_ctlcluster <version> main start) or set DATABASE_URL.');
    this.name = 'DatabaseUnreachableError';
  }
}

/** host:port/database of a URL, without user or password, for messages. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

/** Creates the database named in `url` when it does not exist (development and tests). */
async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`Database name "${name}" must be letters, digits and _`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new DatabaseUnreachableError(describeDatabaseUrl(url), error);
  }
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } catch (error) {
    // Two processes may create it at once; the loser sees duplicate_database.
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(url: string): Promise<string[]> {
  await ensureDatabase(url);
  const dataSource = createDataSource({ url, poolSize: 2, applicationName: 'keyward-migrate' });
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await dataSource.destroy();
  }
}
