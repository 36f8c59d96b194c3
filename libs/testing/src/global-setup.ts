import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '../../persistence/src/data-source';
import { resolveTestInfrastructure, withDatabase } from './test-infrastructure';

/**
 * Runs once per `npm test`: finds Postgres and RabbitMQ, migrates a template database that every
 * test file clones (CREATE DATABASE … TEMPLATE), and hands the locations to the workers via env.
 */
export default async function globalSetup(): Promise<void> {
  const infrastructure = await resolveTestInfrastructure();
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const template = `keyward_tpl_${runId}`;
  const templateUrl = withDatabase(infrastructure.adminDatabaseUrl, template);
  await migrate(templateUrl);
  // A template must have no open connections when it is cloned.
  const admin = new Client({ connectionString: infrastructure.adminDatabaseUrl });
  await admin.connect();
  await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [template]);
  await admin.end();

  process.env.KEYWARD_TEST_RUN_ID = runId;
  process.env.KEYWARD_TEST_ADMIN_DATABASE_URL = infrastructure.adminDatabaseUrl;
  process.env.KEYWARD_TEST_TEMPLATE_DATABASE = template;
  process.env.KEYWARD_TEST_AMQP_URL = infrastructure.amqpUrl;
  (globalThis as { __keywardStop?: () => Promise<void> }).__keywardStop = infrastructure.stop;
}
