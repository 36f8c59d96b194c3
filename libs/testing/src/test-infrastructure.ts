import { connect } from 'amqplib';
import { Client } from 'pg';
import { PRIVATE_SERVICE_IMAGES } from './private-containers';

/**
 * Where the tests' Postgres and RabbitMQ are: TEST_DATABASE_URL / TEST_AMQP_URL when set, else
 * the local services, else containers when a Docker engine answers, else a clear failure.
 */
export interface TestInfrastructure {
  /** A URL on the server's maintenance database, used to create and drop test databases. */
  adminDatabaseUrl: string;
  amqpUrl: string;
  stop?: () => Promise<void>;
}

/** The same server URL with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const LOCAL_DATABASE = 'postgres://postgres@127.0.0.1:5432/postgres';
const LOCAL_AMQP = 'amqp://guest:guest@127.0.0.1:5672';

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function rabbitAnswers(url: string): Promise<boolean> {
  try {
    const connection = await connect(url, { timeout: 3_000 });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

export async function resolveTestInfrastructure(): Promise<TestInfrastructure> {
  const explicitDb = process.env.TEST_DATABASE_URL;
  const explicitAmqp = process.env.TEST_AMQP_URL;
  const dbUrl = explicitDb ?? LOCAL_DATABASE;
  const amqpUrl = explicitAmqp ?? LOCAL_AMQP;
  const [dbOk, amqpOk] = await Promise.all([postgresAnswers(dbUrl), rabbitAnswers(amqpUrl)]);
  if (dbOk && amqpOk) return { adminDatabaseUrl: dbUrl, amqpUrl };

  if (process.env.CI !== 'true' && !explicitDb && !explicitAmqp) {
    const containers = await startContainers().catch(() => undefined);
    if (containers) return containers;
  }
  const missing = [!dbOk && `PostgreSQL at ${new URL(dbUrl).host} (TEST_DATABASE_URL)`, !amqpOk && `RabbitMQ at ${new URL(amqpUrl).host} (TEST_AMQP_URL)`].filter(Boolean);
  throw new Error(
    `keyward tests need a real PostgreSQL and RabbitMQ, and these did not answer: ${missing.join(', ')}. ` +
      'Start them (docker compose up -d postgres rabbitmq; or pg_ctlcluster <version> main start and rabbitmq-server -detached) ' +
      'or point TEST_DATABASE_URL / TEST_AMQP_URL at running ones.',
  );
}

async function startContainers(): Promise<TestInfrastructure> {
  // Loaded only when needed: most runs use local services. The images compose uses (pg_dump 15
  // can dump them), built offline by deploy/images/offline-base.sh; no Ryuk image from Docker Hub.
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  const { GenericContainer, Wait } = await import('testcontainers');
  const postgres = await new GenericContainer(PRIVATE_SERVICE_IMAGES.postgres)
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  const rabbit = await new GenericContainer(PRIVATE_SERVICE_IMAGES.rabbitmq)
    .withExposedPorts(5672)
    .withWaitStrategy(Wait.forLogMessage(/Server startup complete/))
    .start();
  return {
    adminDatabaseUrl: `postgres://postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/postgres`,
    amqpUrl: `amqp://guest:guest@${rabbit.getHost()}:${rabbit.getMappedPort(5672)}`,
    stop: async () => {
      await rabbit.stop();
      await postgres.stop();
    },
  };
}
