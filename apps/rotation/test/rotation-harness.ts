import { randomUUID } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { ServiceDefinition } from '@keyward/bootstrap';
import { KeywardConfig } from '@keyward/config';
import { AnyEvent, createEvent, EventData, EventEnvelope, RejectionReason } from '@keyward/contracts';
import { ApiKey } from '@keyward/key-material';
import { AuditEntryEntity, AuditLog, ConnectionEntity, CredentialEntity } from '@keyward/persistence';
import { SECRET_STORE, SecretReader, SecretStore } from '@keyward/secrets';
import {
  canaryKey,
  captureLogs,
  CapturedLogs,
  createTestDatabase,
  dropTopology,
  EventTap,
  eventually,
  publishExternal,
  TestDatabase,
  testConfig,
  testPrefix,
  startTestService,
} from '@keyward/testing';
import { ROTATION_CONSUMER } from '../credential-lifecycle.service';
import { rotationDefinition } from '../rotation.definition';

export type SecretBackend = 'local' | 'aws';

/** A key as intake left it: a submissions row and an AWSPENDING version. The raw value is a canary. */
export interface Submitted {
  tenantId: string;
  submissionId: string;
  credentialId: string;
  last4: string;
  raw: string;
}

const RETRY_TIERS_MS = [200, 400];

/**
 * The rotation worker as deployed (its module behind the real AMQP transport, Postgres and the
 * chosen secret backend), plus what intake and the validator would do before it: submissions,
 * pending secret versions, revocations and their events.
 */
export class RotationHarness {
  readonly definition: ServiceDefinition = rotationDefinition({ tiersMs: RETRY_TIERS_MS });
  readonly logs: CapturedLogs = captureLogs('rotation-test');
  readonly submitted: Submitted[] = [];
  db!: TestDatabase;
  prefix!: string;
  config!: KeywardConfig;
  app!: INestApplication;
  tap!: EventTap;

  constructor(
    readonly backend: SecretBackend,
    private readonly env: Record<string, string> = {},
  ) {}

  async start(): Promise<this> {
    this.db = await createTestDatabase();
    this.prefix = testPrefix();
    this.config = testConfig('rotation', { databaseUrl: this.db.url, prefix: this.prefix, KEYWARD_SECRETS_BACKEND: this.backend, ...this.env });
    this.app = await startTestService(this.definition, this.config, this.logs.logger);
    this.tap = await new EventTap(this.prefix).start();
    return this;
  }

  async stop(): Promise<void> {
    await this.tap?.stop();
    await this.app?.close();
    await dropTopology(this.prefix);
    await this.db?.drop();
  }

  get store(): SecretStore {
    return this.app.get<SecretStore>(SECRET_STORE);
  }

  get reader(): SecretReader {
    return this.app.get(SecretReader);
  }

  get dataSource(): DataSource {
    return this.app.get(DataSource);
  }

  newTenant(): string {
    return `t-${randomUUID()}`;
  }

  /** What intake does on PUT …/pleo/key: supersede older pending submissions, store AWSPENDING. */
  async submit(tenantId: string): Promise<Submitted> {
    const raw = canaryKey('rot');
    const key = ApiKey.fromTrusted(raw);
    const s: Submitted = { tenantId, submissionId: randomUUID(), credentialId: randomUUID(), last4: key.last4, raw };
    await this.store.putPending(tenantId, s.credentialId, key);
    await this.db.query(
      `WITH superseded AS (
         UPDATE submissions p SET superseded_at = now(), superseded_by = $1
          WHERE p.tenant_id = $2 AND p.superseded_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = p.credential_id))
       INSERT INTO submissions (id, tenant_id, credential_id, secret_version_id, last4, fingerprint, replacing, submitted_by, correlation_id)
       VALUES ($1, $2, $3::uuid, $3::text, $4, $5, EXISTS (SELECT 1 FROM connections WHERE tenant_id = $2 AND status = 'active'), 'token:dev', $6)`,
      [s.submissionId, tenantId, s.credentialId, s.last4, key.fingerprint(this.config.secrets.fingerprintPepper), `corr-${s.submissionId}`],
    );
    this.submitted.push(s);
    return s;
  }

  validated(s: Submitted, companyId: string, data: Partial<EventData<'key.validated'>> = {}): EventEnvelope<'key.validated'> {
    return createEvent('key.validated', this.origin(s), {
      submissionId: s.submissionId,
      credentialId: s.credentialId,
      companyId,
      subjectType: 'company',
      scopes: ['accounts:read', 'export-jobs:write'],
      ...data,
    });
  }

  rejected(s: Submitted, reason: RejectionReason, missingScopes?: string[]): EventEnvelope<'key.rejected'> {
    return createEvent('key.rejected', this.origin(s), {
      submissionId: s.submissionId,
      credentialId: s.credentialId,
      reason,
      ...(missingScopes ? { missingScopes } : {}),
      message: `rejected: ${reason}`,
    });
  }

  /** Publishes as another service would, and waits until rotation has committed its handling. */
  async deliver(event: AnyEvent): Promise<void> {
    await publishExternal(this.prefix, event);
    await this.handled(event);
  }

  async handled(event: AnyEvent, timeoutMs = 20_000): Promise<void> {
    await eventually(
      async () => (await this.db.query(`SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2`, [ROTATION_CONSUMER, event.id])).length > 0,
      timeoutMs,
      `rotation to handle ${event.type} ${event.id}`,
    );
  }

  /** What intake does on POST …/compromise: commit the revocation, then publish. */
  async compromise(tenantId: string, credentialId: string): Promise<EventEnvelope<'key.compromised'>> {
    const correlationId = `corr-${randomUUID()}`;
    await this.db.query(`INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id) VALUES ($1, $2, 'compromised', 'token:ops', $3)`, [
      credentialId,
      tenantId,
      correlationId,
    ]);
    const event = createEvent('key.compromised', { tenantId, correlationId, producer: 'intake' }, { credentialId, reportedBy: 'token:ops' });
    await this.deliver(event);
    return event;
  }

  /** What intake does on DELETE …/connection: revoke the active and every pending credential, then publish. */
  async uninstall(tenantId: string): Promise<EventEnvelope<'connection.uninstalled'>> {
    const correlationId = `corr-${randomUUID()}`;
    await this.db.query(
      `INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id)
       SELECT c.active_credential_id, c.tenant_id, 'uninstalled', 'token:dev', $2 FROM connections c
        WHERE c.tenant_id = $1 AND c.active_credential_id IS NOT NULL
       UNION
       SELECT s.credential_id, s.tenant_id, 'uninstalled', 'token:dev', $2 FROM submissions s
        WHERE s.tenant_id = $1 AND s.superseded_at IS NULL AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = s.credential_id)
       ON CONFLICT (credential_id) DO NOTHING`,
      [tenantId, correlationId],
    );
    const event = createEvent('connection.uninstalled', { tenantId, correlationId, producer: 'intake' }, { reason: 'uninstalled_by_customer', since: new Date().toISOString() });
    await this.deliver(event);
    return event;
  }

  async connection(tenantId: string): Promise<ConnectionEntity | null> {
    return this.dataSource.getRepository(ConnectionEntity).findOne({ where: { tenantId } });
  }

  async credential(credentialId: string): Promise<CredentialEntity | null> {
    return this.dataSource.getRepository(CredentialEntity).findOne({ where: { id: credentialId } });
  }

  /** versionId → labels (AWSCURRENT, AWSPENDING); `disabled` versions listed separately. */
  async labels(tenantId: string): Promise<{ labels: Record<string, string[]>; disabled: string[]; deletionScheduledFor: Date | null }> {
    const description = await this.store.describe(tenantId);
    const labels: Record<string, string[]> = {};
    for (const v of description?.versions ?? []) labels[v.versionId] = [...v.stages].sort();
    return {
      labels,
      disabled: (description?.versions ?? []).filter((v) => v.disabled).map((v) => v.versionId),
      deletionScheduledFor: description?.deletionScheduledFor ?? null,
    };
  }

  async currentVersion(tenantId: string): Promise<string | null> {
    const { labels } = await this.labels(tenantId);
    return Object.entries(labels).find(([, stages]) => stages.includes('AWSCURRENT'))?.[0] ?? null;
  }

  async audit(tenantId: string): Promise<AuditEntryEntity[]> {
    return this.dataSource.getRepository(AuditEntryEntity).find({ where: { tenantId }, order: { seq: 'ASC' } });
  }

  async verifyAudit(tenantId: string) {
    return AuditLog.verify(this.dataSource.manager, tenantId);
  }

  /** A rogue DBA: bypasses the append-only trigger and edits an entry in place. */
  async tamperWithAudit(tenantId: string, seq: number): Promise<void> {
    const client = new Client({ connectionString: this.db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(`UPDATE audit_log SET details = details || '{"reason":"routine"}'::jsonb WHERE tenant_id = $1 AND seq = $2`, [tenantId, seq]);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
  }

  /** Events of one type for one tenant that rotation published. */
  published<T extends AnyEvent['type']>(type: T, tenantId: string) {
    return this.tap.ofType(type, tenantId).filter((e) => e.producer === 'rotation');
  }

  private origin(s: Submitted) {
    return { tenantId: s.tenantId, correlationId: `corr-${s.submissionId}`, producer: 'validator' };
  }
}
