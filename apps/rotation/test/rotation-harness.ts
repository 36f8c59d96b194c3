import { randomUUID } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { ServiceDefinition } from '@keyward/bootstrap';
import { KeywardConfig } from '@keyward/config';
import { AnyEvent, createEvent, EventData, EventEnvelope, RejectionReason } from '@keyward/contracts';
import { ApiKey } from '@keyward/key-material';
import { AuditEntryEntity, AuditLog, ConnectionEntity, CredentialEntity } from '@keyward/persistence';
import { KeywardLogger } from '@keyward/observability';
import { AwsSecretStore, SECRET_STORE, SecretReader, SecretStore } from '@keyward/secrets';
import {
  canaryKey,
  captureLogs,
  CapturedLogs,
  createTestDatabase,
  dropTopology,
  EMULATOR_CREDENTIALS,
  EventTap,
  eventually,
  publishExternal,
  recordAsOwner,
  revocationAsIntake,
  submissionAsIntake,
  uninstallRevocationsAsIntake,
  TestDatabase,
  testConfig,
  testPrefix,
  startTestService,
} from '@keyward/testing';
import { ROTATION } from '../rotation-identity';
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
  /** Events made by `validated`/`rejected`: `deliver` records the validator's verdict for them first. */
  private readonly fromValidator = new Set<string>();
  db!: TestDatabase;
  prefix!: string;
  config!: KeywardConfig;
  app!: INestApplication;
  tap!: EventTap;
  /** Intake's writes and the validator's reads, on aws each under its own IAM role (the emulator enforces them). */
  intakeStore!: SecretStore;
  validatorStore!: SecretStore;
  private validatorReader?: SecretReader;
  private readonly peers: AwsSecretStore[] = [];

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
    if (this.backend === 'aws') {
      const peer = (role: 'intake' | 'validator') => {
        const store = new AwsSecretStore({
          region: this.config.secrets.awsRegion,
          endpoint: this.config.secrets.awsEndpoint,
          maxAttempts: 3,
          naming: { namePrefix: this.config.secrets.namePrefix, envName: this.config.secrets.envName },
          credentials: EMULATOR_CREDENTIALS[role],
          retryBaseDelayMs: 1,
        });
        this.peers.push(store);
        return store;
      };
      this.intakeStore = peer('intake');
      this.validatorStore = peer('validator');
      this.validatorReader = new SecretReader(this.validatorStore, this.dataSource, this.app.get(KeywardLogger), 0);
    } else {
      this.intakeStore = this.validatorStore = this.store;
    }
    return this;
  }

  async stop(): Promise<void> {
    await this.tap?.stop();
    await this.app?.close();
    for (const store of this.peers) store.destroy();
    await dropTopology(this.prefix);
    await this.db?.drop();
  }

  get store(): SecretStore {
    return this.app.get<SecretStore>(SECRET_STORE);
  }

  /** A key read for use as the validator reads it. */
  get reader(): SecretReader {
    return this.validatorReader ?? this.app.get(SecretReader);
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
    await this.intakeStore.putPending(tenantId, s.credentialId, key);
    await submissionAsIntake(this.db, {
      id: s.submissionId,
      tenantId,
      credentialId: s.credentialId,
      last4: s.last4,
      fingerprint: key.fingerprint(this.config.secrets.fingerprintPepper),
    });
    this.submitted.push(s);
    return s;
  }

  validated(s: Submitted, companyId: string, data: Partial<EventData<'key.validated'>> = {}): EventEnvelope<'key.validated'> {
    return this.asValidator(
      createEvent('key.validated', this.origin(s), {
        submissionId: s.submissionId,
        credentialId: s.credentialId,
        companyId,
        subjectType: 'company',
        scopes: ['accounts:read', 'export-jobs:write'],
        ...data,
      }),
    );
  }

  rejected(s: Submitted, reason: RejectionReason, missingScopes?: string[]): EventEnvelope<'key.rejected'> {
    return this.asValidator(
      createEvent('key.rejected', this.origin(s), {
        submissionId: s.submissionId,
        credentialId: s.credentialId,
        reason,
        ...(missingScopes ? { missingScopes } : {}),
        message: `rejected: ${reason}`,
      }),
    );
  }

  private asValidator<E extends AnyEvent>(event: E): E {
    this.fromValidator.add(event.id);
    return event;
  }

  /**
   * Publishes as another service would (the validator's verdict recorded first for events made
   * by `validated`/`rejected`), and waits until rotation has committed its handling.
   */
  async deliver(event: AnyEvent): Promise<void> {
    await this.publish(event);
    await this.handled(event);
  }

  /** `deliver` without waiting for rotation. */
  async publish(event: AnyEvent): Promise<void> {
    if (this.fromValidator.delete(event.id)) await recordAsOwner(this.db, event);
    await publishExternal(this.prefix, event);
  }

  async handled(event: AnyEvent, timeoutMs = 20_000): Promise<void> {
    await eventually(
      async () => (await this.db.query(`SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2`, [ROTATION.consumer, event.id])).length > 0,
      timeoutMs,
      `rotation to handle ${event.type} ${event.id}`,
    );
  }

  /** What intake does on POST …/compromise: commit the revocation, then publish. */
  async compromise(tenantId: string, credentialId: string): Promise<EventEnvelope<'key.compromised'>> {
    const event = await this.reportCompromise(tenantId, credentialId);
    await this.deliver(event);
    return event;
  }

  /** The request half of a compromise: the revocation committed, the event not yet delivered. */
  async reportCompromise(tenantId: string, credentialId: string): Promise<EventEnvelope<'key.compromised'>> {
    const correlationId = `corr-${randomUUID()}`;
    await revocationAsIntake(this.db, { credentialId, tenantId, reason: 'compromised', reportedBy: 'token:ops', correlationId });
    return createEvent('key.compromised', { tenantId, correlationId, producer: 'intake' }, { credentialId, reportedBy: 'token:ops' });
  }

  /** What intake does on DELETE …/connection: revoke the active and every pending credential, then publish. */
  async uninstall(tenantId: string): Promise<EventEnvelope<'connection.uninstalled'>> {
    const correlationId = `corr-${randomUUID()}`;
    await uninstallRevocationsAsIntake(this.db, tenantId, correlationId);
    const event = createEvent('connection.uninstalled', { tenantId, correlationId, producer: 'intake' }, { reason: 'uninstalled_by_customer', since: new Date().toISOString() });
    await recordAsOwner(this.db, event);
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

  /** Time passes for the sealed store: the tenant's deleted secret is past its recovery window. */
  async endRecoveryWindow(tenantId: string): Promise<void> {
    // eslint-disable-next-line keyward/table-writers -- stands in for the clock, not for a service
    await this.db.query(`UPDATE secrets SET deletion_scheduled_for = now() - interval '1 second' WHERE tenant_id = $1`, [tenantId]);
  }

  /** A rogue DBA: bypasses the append-only trigger and edits an entry in place. */
  async tamperWithAudit(tenantId: string, seq: number): Promise<void> {
    const client = new Client({ connectionString: this.db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      // eslint-disable-next-line keyward/table-writers -- the test of tamper detection: a write no service may make
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
