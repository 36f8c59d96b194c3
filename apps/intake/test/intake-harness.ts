import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { KeywardConfig } from '@keyward/config';
import { CapturedLogs, captureLogs, createTestDatabase, dropTopology, EventTap, startTestService, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
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
  await h.db.query(`INSERT INTO install_sessions (token_hash, tenant_id, created_by, expires_at) VALUES ($1, $2, 'token:dev', now() - interval '1 minute')`, [
    installSessionTokenHash(token),
    tenantId,
  ]);
}

/** What rotation does on `key.validated`: the credential becomes active and the connection points at it. */
export async function activateAsRotation(h: IntakeHarness, submissionId: string, companyId = 'company-1', scopes = ['accounts:read', 'export-jobs:write']): Promise<string> {
  const [s] = await h.db.query<{ tenant_id: string; credential_id: string }>('SELECT tenant_id, credential_id FROM submissions WHERE id = $1', [submissionId]);
  await h.db.query(`UPDATE credentials SET status = 'invalidated', invalidated_reason = 'replaced', invalidated_at = now() WHERE tenant_id = $1 AND status = 'active'`, [s.tenant_id]);
  await h.db.query(
    `INSERT INTO credentials (id, tenant_id, submission_id, secret_version_id, last4, fingerprint, status, company_id, subject_type, subject_id, scopes, validated_at, activated_at)
     SELECT credential_id, tenant_id, id, secret_version_id, last4, fingerprint, 'active', $2, 'company', $2, $3, now(), now() FROM submissions WHERE id = $1`,
    [submissionId, companyId, scopes],
  );
  await h.db.query(
    `INSERT INTO connections (tenant_id, status, company_id, subject_type, subject_id, active_credential_id, activated_at, last_validated_at, updated_at)
     VALUES ($1, 'active', $2, 'company', $2, $3, now(), now(), now())
     ON CONFLICT (tenant_id) DO UPDATE SET status = 'active', active_credential_id = $3, company_id = $2, error_code = NULL, error_detail = NULL,
       activated_at = now(), last_validated_at = now(), status_since = now(), updated_at = now()`,
    [s.tenant_id, companyId, s.credential_id],
  );
  return s.credential_id;
}

/** What rotation does on `key.rejected`. */
export async function rejectAsRotation(h: IntakeHarness, submissionId: string, reason: string, missingScopes?: string[]): Promise<void> {
  await h.db.query(
    `INSERT INTO credentials (id, tenant_id, submission_id, secret_version_id, last4, fingerprint, status, rejection_reason, rejection_detail)
     SELECT credential_id, tenant_id, id, secret_version_id, last4, fingerprint, 'rejected', $2, $3::jsonb FROM submissions WHERE id = $1`,
    [submissionId, reason, JSON.stringify(missingScopes ? { missingScopes } : {})],
  );
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
