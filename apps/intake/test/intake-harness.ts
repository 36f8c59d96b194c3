import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { KeywardConfig } from '@keyward/config';
import {
  activeConnection,
  CapturedLogs,
  captureLogs,
  createTestDatabase,
  credentialAsRotation,
  dropTopology,
  EventTap,
  installSessionAsIntake,
  startTestService,
  TestDatabase,
  testConfig,
  testPrefix,
} from '@keyward/testing';
import { intakeService } from '../intake.definition';
import { installSessionTokenHash } from '@keyward/service-auth';

export const SERVICE = 'Bearer dev-service-token';
export const OPS = 'Bearer ops-service-token-0001';

export interface IntakeHarness {
  app: INestApplication;
  config: KeywardConfig;
  db: TestDatabase;
  prefix: string;
  tap: EventTap;
  logs: CapturedLogs;
  readonly http: () => ReturnType<typeof request>;
  close(): Promise<void>;
}

/** The intake service as it runs (same module, same HTTP set-up), on its own database and exchange. */
export async function startIntake(env: Record<string, string> = {}): Promise<IntakeHarness> {
  const db = await createTestDatabase();
  const prefix = testPrefix();
  const config = testConfig('intake', { databaseUrl: db.url, prefix, ...env });
  const logs = captureLogs('intake');
  const definition = intakeService(config);
  const app = await startTestService(definition, config, logs.logger);
  const tap = await new EventTap(prefix).start();
  return {
    app,
    config,
    db,
    prefix,
    tap,
    logs,
    http: () => request(app.getHttpServer()),
    close: async () => {
      await tap.stop();
      await app.close();
      await dropTopology(prefix);
      await db.drop();
    },
  };
}

let tenantCounter = 0;
export function newTenant(label = 't'): string {
  tenantCounter += 1;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${tenantCounter}`;
}

export async function mintSession(h: IntakeHarness, tenantId: string): Promise<string> {
  const res = await h.http().post('/v1/install-sessions').set('Authorization', SERVICE).send({ tenantId }).expect(201);
  return res.body.token as string;
}

/** An install session whose expiry has passed, written as intake would have written it. */
export async function expiredSession(h: IntakeHarness, tenantId: string, token: string): Promise<void> {
  await installSessionAsIntake(h.db, { tokenHash: installSessionTokenHash(token), tenantId, lifetimeMinutes: -1 });
}

/** What rotation does on `key.validated`: the credential becomes active and the connection points at it. */
export async function activateAsRotation(h: IntakeHarness, submissionId: string, companyId = 'company-1', scopes = ['accounts:read', 'export-jobs:write']): Promise<string> {
  return activeConnection(h.db, submissionId, { companyId, scopes });
}

/** What rotation does on `key.rejected`. */
export async function rejectAsRotation(h: IntakeHarness, submissionId: string, reason: string, missingScopes?: string[]): Promise<void> {
  await credentialAsRotation(h.db, submissionId, { status: 'rejected', reason, missingScopes });
}

/** Every row of every table but the sealed store, as text: where a leaked key would show up. */
export async function dumpDatabase(h: IntakeHarness): Promise<string> {
  const tables = await h.db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'secret_versions'`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables) {
    const rows = await h.db.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
    parts.push(`${table_name}:\n${rows.map((r) => r.row).join('\n')}`);
  }
  return parts.join('\n');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
