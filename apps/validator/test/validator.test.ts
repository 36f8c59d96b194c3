import { randomUUID } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import { ServiceDefinition } from '@keyward/bootstrap';
import { KeywardConfig } from '@keyward/config';
import { createEvent } from '@keyward/contracts';
import { ApiKey } from '@keyward/key-material';
import { PleoClient } from '@keyward/pleo';
import { SECRET_STORE, SecretStore } from '@keyward/secrets';
import {
  canaryKey,
  captureLogs,
  connectionAsRotation,
  createTestDatabase,
  dropTopology,
  EventTap,
  eventually,
  findCanaries,
  publishExternal,
  revocationAsIntake,
  submissionAsIntake,
  QueueWatch,
  RowWatch,
  parkedQueues,
  TestDatabase,
  connectTestBroker,
  testConfig,
  testPrefix,
  startTestService,
} from '@keyward/testing';
import { RunningPleoSandbox, startPleoSandbox } from '../../pleo-sandbox/start-pleo-sandbox';
import { validationRetryPolicy } from '../validation-retry-policy';
import { ValidatorModule } from '../validator.module';

/**
 * The validator end to end: a key.submitted (or key.revalidate) published on the broker, the
 * worker reading the key from the real secret store, asking the Pleo sandbox over HTTP, and the
 * event it publishes through the outbox.
 */
const TIERS = [200, 400, 800];
/** KEYWARD_VALIDATION_RETRY_HOURS=0.002: a 7.2 s retry budget, so parking is observable. */
const BUDGET_HOURS = '0.002';

describe('validator', () => {
  let db: TestDatabase;
  let prefix: string;
  let sandbox: RunningPleoSandbox;
  let app: INestApplication;
  let tap: EventTap;
  let config: KeywardConfig;
  const logs = captureLogs('validator');
  /** Every key this test handed to keyward, to prove none of them leaked anywhere. */
  const usedKeys: string[] = [];
  /** Parked copies taken off the queue by a test, with their properties and headers. */
  const parkedCopies: string[] = [];
  let queues: QueueWatch;
  let retryRows: RowWatch;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    sandbox = await startPleoSandbox({ port: 0 });
    config = testConfig('validator', {
      databaseUrl: db.url,
      prefix,
      PLEO_API_BASE_URL: sandbox.url,
      PLEO_REQUIRED_SCOPES: 'accounts:read export-jobs:write',
      PLEO_TIMEOUT_MS: '1000',
      KEYWARD_VALIDATION_RETRY_HOURS: BUDGET_HOURS,
    });
    const definition: ServiceDefinition = {
      module: ValidatorModule.forRoot({ pleo: { breaker: { resetTimeoutMs: 500 } } }),
      consumes: 'validator',
      retry: validationRetryPolicy(config, TIERS),
    };
    tap = await new EventTap(prefix).start();
    queues = new QueueWatch(() => parkedQueues(prefix)).start();
    retryRows = new RowWatch(() => db.query('SELECT * FROM scheduled_retries')).start();
    app = await startTestService(definition, config, logs.logger);
  });

  afterAll(async () => {
    await queues?.stop();
    await retryRows?.stop();
    await tap?.stop();
    await app?.close();
    await sandbox?.close();
    await dropTopology(prefix, TIERS);
    await db?.drop();
  });

  beforeEach(() => sandbox.state.clearFault());

  const newTenant = () => `t-${randomUUID()}`;

  /** As intake would: the pending secret version, the submission row, then key.submitted. */
  async function submit(tenantId: string, apiKey: string, options: { publish?: boolean } = {}) {
    usedKeys.push(apiKey);
    const key = ApiKey.fromTrusted(apiKey);
    const submissionId = randomUUID();
    const credentialId = randomUUID();
    await app.get<SecretStore>(SECRET_STORE).putPending(tenantId, credentialId, key);
    await submissionAsIntake(db, {
      id: submissionId,
      tenantId,
      credentialId,
      last4: key.last4,
      fingerprint: key.fingerprint(config.secrets.fingerprintPepper),
      replacing: false,
      submittedBy: 'token:test',
    });
    const event = createEvent(
      'key.submitted',
      { tenantId, correlationId: `corr-${submissionId}`, producer: 'intake' },
      { submissionId, credentialId, secretVersionId: credentialId, last4: key.last4, replacing: false },
    );
    if (options.publish !== false) await publishExternal(prefix, event);
    return { submissionId, credentialId, event, last4: key.last4 };
  }

  const sandboxCallsFor = (apiKey: string) => sandbox.state.recentRequests(2_000).filter((r) => r.credentialLast4 === apiKey.slice(-4));
  const outcomeFor = (submissionId: string) =>
    eventually(
      () => tap.ofType('key.validated').find((e) => e.data.submissionId === submissionId) ?? tap.ofType('key.rejected').find((e) => e.data.submissionId === submissionId),
      20_000,
      `the outcome of submission ${submissionId}`,
    );
  const attemptsRow = async (credentialId: string) =>
    (
      await db.query<{ attempts: number; last_error_code: string | null; parked_at: Date | null; first_failure_at: Date | null }>(
        `SELECT attempts, last_error_code, parked_at, first_failure_at FROM validation_attempts WHERE credential_id = $1`,
        [credentialId],
      )
    )[0];
  const audit = (tenantId: string) =>
    db.query<{ action: string; actor: string; credential_id: string; last4: string; details: Record<string, unknown> }>(
      `SELECT action, actor, credential_id, last4, details FROM audit_log WHERE tenant_id = $1 ORDER BY seq`,
      [tenantId],
    );

  describe('key.submitted', () => {
    it('validates a working company key with the required scopes: company, subject and scopes', async () => {
      const tenantId = newTenant();
      const pleoKey = sandbox.state.issueKey({ scopes: ['accounts:read', 'export-jobs:write', 'users:read'] });
      const { submissionId, credentialId, event, last4 } = await submit(tenantId, pleoKey.apiKey);

      const outcome = await outcomeFor(submissionId);
      expect(outcome).toMatchObject({
        type: 'key.validated',
        tenantId,
        producer: 'validator',
        correlationId: event.correlationId,
        causationId: event.id,
        data: { submissionId, credentialId, companyId: pleoKey.subjectId, subjectType: 'company', scopes: ['accounts:read', 'export-jobs:write', 'users:read'] },
      });
      expect(await audit(tenantId)).toEqual([expect.objectContaining({ action: 'credential.validated', actor: 'service:validator', credential_id: credentialId, last4 })]);
      expect(sandboxCallsFor(pleoKey.apiKey)).toHaveLength(1);
    });

    it('rejects a key Pleo does not know as invalid_key', async () => {
      const tenantId = newTenant();
      const { submissionId } = await submit(tenantId, canaryKey());
      expect(await outcomeFor(submissionId)).toMatchObject({
        type: 'key.rejected',
        data: { reason: 'invalid_key', message: 'Pleo did not accept this API key.' },
      });
      expect((await audit(tenantId)).map((a) => a.action)).toEqual(['credential.rejected']);
    });

    it('rejects a key revoked in Pleo as invalid_key', async () => {
      const pleoKey = sandbox.state.issueKey({});
      sandbox.state.revoke(pleoKey.id);
      const { submissionId } = await submit(newTenant(), pleoKey.apiKey);
      expect(await outcomeFor(submissionId)).toMatchObject({ type: 'key.rejected', data: { reason: 'invalid_key' } });
    });

    it('rejects a key without the required scopes as insufficient_scopes, naming the missing ones', async () => {
      const pleoKey = sandbox.state.issueKey({ scopes: ['accounts:read', 'users:read'] });
      const { submissionId } = await submit(newTenant(), pleoKey.apiKey);
      const outcome = await outcomeFor(submissionId);
      expect(outcome).toMatchObject({ type: 'key.rejected', data: { reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'] } });
      expect((outcome.data as { message: string }).message).toContain('export-jobs:write');
    });

    it('rejects a key of another company than the one the tenant is bound to as company_mismatch', async () => {
      const tenantId = newTenant();
      await connectionAsRotation(db, { tenantId, status: 'active', companyId: randomUUID() });
      const { submissionId } = await submit(tenantId, sandbox.state.issueKey({}).apiKey);
      expect(await outcomeFor(submissionId)).toMatchObject({ type: 'key.rejected', data: { reason: 'company_mismatch' } });
    });

    it('accepts the bound company, and any company after an uninstall', async () => {
      const bound = newTenant();
      const companyId = randomUUID();
      await connectionAsRotation(db, { tenantId: bound, status: 'disabled', companyId });
      const same = await submit(bound, sandbox.state.issueKey({ companyId }).apiKey);
      expect(await outcomeFor(same.submissionId)).toMatchObject({ type: 'key.validated', data: { companyId } });

      const reinstalled = newTenant();
      await connectionAsRotation(db, { tenantId: reinstalled, status: 'uninstalled', companyId: randomUUID() });
      const other = await submit(reinstalled, sandbox.state.issueKey({}).apiKey);
      expect(await outcomeFor(other.submissionId)).toMatchObject({ type: 'key.validated' });
    });

    it('rejects an organisation key as unsupported_subject (multi-entity support is off)', async () => {
      const { submissionId } = await submit(newTenant(), sandbox.state.issueKey({ subject: 'organization' }).apiKey);
      expect(await outcomeFor(submissionId)).toMatchObject({ type: 'key.rejected', data: { reason: 'unsupported_subject' } });
    });

    it('drops a submission that is no longer the newest: the newest wins, the old key is never sent to Pleo', async () => {
      const tenantId = newTenant();
      const olderKey = sandbox.state.issueKey({});
      const newerKey = sandbox.state.issueKey({});
      const older = await submit(tenantId, olderKey.apiKey, { publish: false });
      const newer = await submit(tenantId, newerKey.apiKey, { publish: false });
      // Intake superseded the older submission when it stored the newer one.
      await publishExternal(prefix, older.event);
      await publishExternal(prefix, newer.event);

      expect(await outcomeFor(newer.submissionId)).toMatchObject({ type: 'key.validated' });
      await eventually(
        async () => (await db.query(`SELECT 1 FROM inbox WHERE event_id = $1`, [older.event.id])).length === 0 && logs.text().includes(older.submissionId),
        10_000,
        'the older event handled',
      );
      expect(tap.events.filter((e) => (e.data as { submissionId?: string }).submissionId === older.submissionId && e.type !== 'key.submitted')).toEqual([]);
      expect(sandboxCallsFor(olderKey.apiKey)).toHaveLength(0);
    });

    it('drops a revoked pending credential (uninstall) without calling Pleo', async () => {
      const tenantId = newTenant();
      const pleoKey = sandbox.state.issueKey({});
      const pending = await submit(tenantId, pleoKey.apiKey, { publish: false });
      await revocationAsIntake(db, { credentialId: pending.credentialId, tenantId, reason: 'uninstalled' });
      await publishExternal(prefix, pending.event);
      await eventually(() => logs.lines().some((l) => l.includes(pending.credentialId) && l.includes('revoked')), 10_000, 'the drop log line');
      await new Promise((r) => setTimeout(r, 300));
      expect(tap.events.filter((e) => e.type !== 'key.submitted' && (e.data as { credentialId?: string }).credentialId === pending.credentialId)).toEqual([]);
      expect(sandboxCallsFor(pleoKey.apiKey)).toHaveLength(0);
    });

    it('keeps a submission made during an outage pending with "Pleo could not be reached", then validates it when Pleo recovers — never rejects it', async () => {
      const tenantId = newTenant();
      const pleoKey = sandbox.state.issueKey({});
      sandbox.state.setFault({ status: 503, count: 3 });
      const { submissionId, credentialId } = await submit(tenantId, pleoKey.apiKey);

      const during = await eventually(
        async () => {
          const row = await attemptsRow(credentialId);
          return row && row.attempts >= 1 ? row : undefined;
        },
        10_000,
        'the outage recorded',
      );
      expect(during).toMatchObject({ last_error_code: 'pleo_unreachable', parked_at: null });
      expect(during.first_failure_at).not.toBeNull();

      const outcome = await outcomeFor(submissionId);
      expect(outcome.type).toBe('key.validated');
      expect(tap.ofType('key.rejected', tenantId)).toEqual([]);
      expect(await attemptsRow(credentialId)).toMatchObject({ attempts: 3, last_error_code: null, parked_at: null });
      expect(sandboxCallsFor(pleoKey.apiKey).map((r) => r.status)).toEqual([503, 503, 503, 200]);
      expect((await audit(tenantId)).map((a) => a.action)).toEqual(['credential.validation_deferred', 'credential.validated']);
    });

    it('honours Retry-After: after a 429 nothing is sent for that key until it has passed', async () => {
      const pleoKey = sandbox.state.issueKey({});
      sandbox.state.setFault({ status: 429, count: 1, retryAfterSeconds: 2 });
      const { submissionId } = await submit(newTenant(), pleoKey.apiKey);
      expect(await outcomeFor(submissionId)).toMatchObject({ type: 'key.validated' });
      const calls = sandboxCallsFor(pleoKey.apiKey);
      // Retries at +200 ms, +600 ms, +1400 ms were answered locally; only after 2 s did a call go out.
      expect(calls.map((c) => c.status)).toEqual([429, 200]);
      expect(Date.parse(calls[1].at) - Date.parse(calls[0].at)).toBeGreaterThanOrEqual(1_950);
    });
  });

  describe('key.revalidate', () => {
    async function activate(scopes?: string[]) {
      const tenantId = newTenant();
      const pleoKey = sandbox.state.issueKey({ scopes });
      const { credentialId } = await submit(tenantId, pleoKey.apiKey, { publish: false });
      await connectionAsRotation(db, { tenantId, status: 'active', companyId: pleoKey.subjectId, activeCredentialId: credentialId });
      return { tenantId, pleoKey, credentialId };
    }
    const revalidate = async (tenantId: string, credentialId: string) => {
      const event = createEvent('key.revalidate', { tenantId, correlationId: `corr-${randomUUID()}`, producer: 'monitor' }, { credentialId, reason: 'auth_failures' });
      await publishExternal(prefix, event);
      return event;
    };
    const revalidated = (event: { id: string }) => eventually(() => tap.ofType('key.revalidated').find((e) => e.causationId === event.id), 20_000, 'key.revalidated');

    it('reports valid, invalid and insufficient_scopes as Pleo sees the active key', async () => {
      const { tenantId, pleoKey, credentialId } = await activate();
      expect((await revalidated(await revalidate(tenantId, credentialId))).data).toMatchObject({ credentialId, outcome: 'valid' });

      sandbox.state.setScopes(pleoKey.id, ['accounts:read']);
      expect((await revalidated(await revalidate(tenantId, credentialId))).data).toMatchObject({
        outcome: 'insufficient_scopes',
        scopes: ['accounts:read'],
        missingScopes: ['export-jobs:write'],
      });

      sandbox.state.revoke(pleoKey.id);
      expect((await revalidated(await revalidate(tenantId, credentialId))).data).toMatchObject({ outcome: 'invalid' });
      expect((await audit(tenantId)).filter((a) => a.action === 'credential.revalidated').map((a) => a.details.outcome)).toEqual(['valid', 'insufficient_scopes', 'invalid']);
    });

    it('reports unreachable when Pleo fails, without retrying', async () => {
      const { tenantId, credentialId } = await activate();
      sandbox.state.setFault({ status: 500, count: 1 });
      expect((await revalidated(await revalidate(tenantId, credentialId))).data).toMatchObject({ outcome: 'unreachable' });
    });

    it('ignores a credential that is not the active one, and never calls Pleo for a revoked one', async () => {
      const { tenantId, pleoKey, credentialId } = await activate();
      const stale = await revalidate(tenantId, randomUUID());
      await revocationAsIntake(db, { credentialId, tenantId, reason: 'compromised' });
      const revoked = await revalidate(tenantId, credentialId);
      await eventually(() => logs.lines().some((l) => l.includes(revoked.id) && l.includes('revoked')), 10_000, 'the revoked drop');
      await eventually(() => logs.lines().some((l) => l.includes(stale.id) && l.includes('not the tenant')), 10_000, 'the stale drop');
      expect(tap.ofType('key.revalidated', tenantId)).toEqual([]);
      expect(sandboxCallsFor(pleoKey.apiKey)).toHaveLength(0);
    });
  });

  it('parks a validation when Pleo stays unreachable past the retry budget, with an operator-readable log, and never rejects', async () => {
    const tenantId = newTenant();
    sandbox.state.setFault({ status: 503 });
    const { submissionId, credentialId, event } = await submit(tenantId, sandbox.state.issueKey({}).apiKey);

    const connection = await connectTestBroker();
    const channel = await connection.createChannel();
    const parked = await eventually(
      async () => {
        const msg = await channel.get(`${prefix}.validator.parked`, { noAck: true });
        return msg === false ? undefined : msg;
      },
      30_000,
      'the parked key.submitted',
    );
    await connection.close();
    expect(JSON.parse(parked.content.toString()).id).toBe(event.id);
    expect(parked.properties.headers?.['x-keyward-last-error']).toEqual(expect.any(String));
    parkedCopies.push(`${JSON.stringify(parked.properties)} ${parked.content.toString()}`);

    const row = await attemptsRow(credentialId);
    expect(row.parked_at).not.toBeNull();
    expect(row.last_error_code).toBe('pleo_unreachable');
    expect(row.attempts).toBeGreaterThanOrEqual(3);
    expect(tap.ofType('key.rejected', tenantId)).toEqual([]);
    expect(tap.ofType('key.validated', tenantId)).toEqual([]);
    const line = logs
      .lines()
      .map((l) => JSON.parse(l) as { level: string; msg: string; submissionId?: string })
      .find((l) => l.level === 'error' && l.submissionId === submissionId);
    expect(line?.msg).toMatch(/Validation parked: Pleo could not be reached .* stays pending_validation/);
    expect((await audit(tenantId)).map((a) => a.action)).toEqual(['credential.validation_deferred', 'credential.validation_parked']);
    // The circuit opened during the storm (and keeps re-opening after each failed half-open trial).
    expect(['open', 'half_open']).toContain(app.get(PleoClient).circuitState);
    expect(logs.text()).toContain('Pleo circuit opened');
    sandbox.state.clearFault();
  }, 60_000);

  it('sent every key to Pleo in a Basic Authorization header, never in a query string', () => {
    const requests = sandbox.state.recentRequests(2_000);
    expect(requests.length).toBeGreaterThan(10);
    for (const r of requests) {
      expect(r).toMatchObject({ authScheme: 'basic', authInHeader: true, queryHadKeyLikeValue: false, basicPasswordNotEmpty: false });
      expect(r.userAgent).toMatch(/^keyward\//);
    }
  });

  it('let no key, in any form, into a log line, a message or its headers (retry and parked copies too), an audit entry or a database row', async () => {
    const stored = JSON.stringify([
      await db.query(`SELECT * FROM outbox`),
      await db.query(`SELECT * FROM audit_log`),
      await db.query(`SELECT * FROM validation_attempts`),
      await db.query(`SELECT * FROM inbox`),
    ]);
    await queues.stop();
    await retryRows.stop();
    expect(usedKeys.length).toBeGreaterThan(10);
    expect(parkedCopies.length).toBeGreaterThan(0);
    expect(retryRows.rows.size).toBeGreaterThan(0); // retry copies were seen while they waited in Postgres
    const places = {
      'logs since start-up': logs.text(),
      'messages on the exchange with their headers': tap.text(),
      'retry copies with their headers (scheduled_retries rows)': retryRows.text(),
      'parked queues while watched': queues.text(),
      'parked copies with their headers': parkedCopies.join('\n'),
      'outbox, audit, attempts and inbox rows': stored,
      "the sandbox's record of requests": JSON.stringify(sandbox.state.recentRequests(2_000)),
    };
    expect(findCanaries(places, usedKeys)).toEqual([]);
  });
});
