import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { createEvent, Refusal } from '@keyward/contracts';
import { ApiKey, parseSubmittedKey } from '@keyward/key-material';
import { CommittedEvents, Outbox } from '@keyward/messaging';
import { KeywardLogger, registerSecret } from '@keyward/observability';
import { AuditLog, inTransactionStartedWithEach, Locks, LOCKS, pipelinedOnce } from '@keyward/persistence';
import { SECRET_STORE, SecretStore, SecretStoreError } from '@keyward/secrets';
import { Caller } from '../auth/caller';
import { parseBody } from '../http/request-body';
import { InstallSessionsService } from '../install-sessions/install-sessions.service';
import { INTAKE } from '../intake-identity';
import { SubmissionRateLimiter } from '../rate-limits/submission-rate-limiter';
import { SubmissionMetrics } from './submission-metrics';
import { ActiveCredential, insertedNewest, situationOf, SubmissionRepository } from './submission.repository';
import { isFinal, keyView, submissionStatus, SubmissionView, submissionView } from './submission-status';
import { Created, DecisionWait } from './decision-wait';
import { KEY_SUBMISSION } from './submission.schema';

export type SubmissionResult =
  /**
   * A new pending credential: stored, recorded, `key.submitted` staged. `waiter`, when the caller
   * will wait: registered before the commit, for `awaitOutcome`.
   */
  | ({ kind: 'created' } & Created<SubmissionView>)
  /** The same key as the newest pending submission (a double click): that submission again. */
  | { kind: 'duplicate_pending'; view: SubmissionView }
  /** The key that is already active: no new version, the current state. */
  | { kind: 'unchanged'; view: SubmissionView };

export interface SubmissionRequest {
  tenantId: string;
  body: unknown;
  caller: Caller;
  correlationId: string;
  /** The caller will wait for the outcome (`Prefer: wait`). */
  waits?: boolean;
}

/**
 * Takes a pasted key in: rate limit, format check, then either the current state (the key is
 * already active), the pending submission it repeats, or a new pending secret version plus the
 * submission, the superseding of older ones, `key.submitted` and an audit entry in one transaction.
 */
@Injectable()
export class SubmissionsService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(SubmissionRepository) private readonly submissions: SubmissionRepository,
    @Inject(SECRET_STORE) private readonly secretStore: SecretStore,
    @Inject(SubmissionRateLimiter) private readonly rateLimiter: SubmissionRateLimiter,
    @Inject(SubmissionMetrics) private readonly metrics: SubmissionMetrics,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
    @Inject(InstallSessionsService) private readonly installSessions: InstallSessionsService,
    @Inject(DecisionWait) private readonly decisions: DecisionWait,
  ) {}

  async submit(request: SubmissionRequest): Promise<SubmissionResult> {
    const { tenantId, caller, correlationId } = request;
    registerRawKey(request.body);
    // Every attempt counts, well formed or not, and the limit is decided first; a well-formed key's
    // situation is read in the same round trip as the count (one implicit transaction).
    const attempt = this.rateLimiter.submissionAttempt(tenantId, caller.rateKey);
    const parsed = this.parseKey(request.body);
    const fingerprint = parsed.key?.fingerprint(this.config.secrets.fingerprintPepper) ?? '';
    const counted = await pipelinedOnce(this.dataSource, [...attempt.statements, ...(parsed.key ? [this.submissions.situationRead(tenantId, fingerprint)] : [])]);
    const situation = counted[attempt.statements.length];
    try {
      attempt.settle(counted);
    } catch (error) {
      this.metrics.count('rate_limited');
      throw error;
    }
    if (parsed.refusal) {
      if (parsed.keyFormat) this.metrics.count('refused_format');
      throw parsed.refusal;
    }
    const { key } = parsed;

    // The three checks below come from one read; they are decided in this order.
    const { active, compromised, newest, newestRevoked } = situationOf(situation);
    if (active && active.fingerprint === fingerprint) {
      this.metrics.count('unchanged');
      // The customer may have fixed the key at Pleo (re-granted scopes): check it now, not at the next probe.
      if (active.reconnectRequired) await this.requestRevalidation(tenantId, active, caller, correlationId);
      if (caller.kind === 'install-session') {
        await this.dataSource.transaction((tx) => this.installSessions.recordSubmission(tx, caller.tokenHash, active.submissionId));
      }
      const record = await this.submissions.find(this.dataSource.manager, tenantId, active.submissionId);
      const view: SubmissionView = record
        ? submissionView(record)
        : { submissionId: active.submissionId, credentialId: active.credentialId, status: 'accepted', key: keyView(active.last4), submittedAt: new Date().toISOString() };
      return { kind: 'unchanged', view };
    }
    // A connect link connects once (the active key again is only a status read); changing the key takes a fresh link.
    if (caller.kind === 'install-session' && caller.used) throw new Refusal('install_session_used');
    if (compromised) {
      this.metrics.count('refused_compromised');
      throw new Refusal('key_previously_compromised');
    }
    if (newest && newest.fingerprint === fingerprint && submissionStatus(newest) === 'pending_validation' && !newest.parkedAt && !newestRevoked) {
      this.metrics.count('duplicate_pending');
      if (caller.kind === 'install-session') {
        await this.dataSource.transaction((tx) => this.installSessions.recordSubmission(tx, caller.tokenHash, newest.id));
      }
      return { kind: 'duplicate_pending', view: submissionView(newest) };
    }

    const submissionId = randomUUID();
    const credentialId = randomUUID();
    await this.storePending(tenantId, credentialId, key);
    const replacing = active !== null;
    const submitted = createEvent('key.submitted', { tenantId, correlationId, producer: INTAKE.producer }, { submissionId, credentialId, secretVersionId: credentialId, last4: key.last4, replacing });
    // One round trip for the tenant's submission lock and the insert after it; one for the
    // session's record, the event, the audit entry (its chain's lock, then the chained insert) and
    // the commit. The lock rides with the start: concurrent submissions of a tenant are recorded
    // one after another, so the newest by seq supersedes.
    const insert = this.submissions.newestInsert({ id: submissionId, tenantId, credentialId, last4: key.last4, fingerprint, replacing, submittedBy: caller.actor, correlationId });
    const first = [Locks.holdStatement(LOCKS.submission(tenantId)), insert];
    const byWriter = CommittedEvents.active(this.dataSource);
    // The waiter before the commit: the decision cannot come before it, so the commit tells the first state.
    const { result: recorded, waiter } = await this.decisions.committing(tenantId, submissionId, request.waits ?? false, () =>
      inTransactionStartedWithEach(this.dataSource, first, async (_tx, rowsOfEach) => {
        const { createdAt, superseded } = insertedNewest(rowsOfEach[1]);
        const entry = {
          tenantId,
          actor: caller.actor,
          action: 'key.submitted',
          credentialId,
          last4: key.last4,
          correlationId,
          details: { submissionId, replacing, supersededSubmissions: superseded },
        };
        const session = caller.kind === 'install-session' ? [this.installSessions.submissionRecord(caller.tokenHash, submissionId)] : [];
        return { result: createdAt, atCommit: [...session, Outbox.staging([submitted], byWriter)!, ...AuditLog.appending([entry])] };
      }),
    );
    // To the validator now, not at the relay's next wake-up (ADR 0051).
    if (byWriter) CommittedEvents.publish(this.dataSource, [submitted]);
    const createdAt = recorded!.result;
    this.metrics.count('pending_validation');
    this.logger.info('Key submitted for validation', { submissionId, credentialId, last4: key.last4, replacing });
    // Nothing has decided about it yet (the validator starts after this commit): no read needed.
    const view: SubmissionView = { submissionId, credentialId, status: 'pending_validation', key: keyView(key.last4), submittedAt: createdAt.toISOString() };
    return { kind: 'created', view, waiter };
  }

  async status(tenantId: string, submissionId: string): Promise<SubmissionView> {
    const record = await this.submissions.find(this.dataSource.manager, tenantId, submissionId);
    if (!record) throw new Refusal('submission_not_found');
    return submissionView(record);
  }

  /**
   * The submission's state once final, or its pending state when `seconds` pass first. It is read
   * again when the deciding transaction commits (SubmissionDecisionsListener wakes the waiter),
   * and on a slow re-check in case that notification was lost. `created`: a submission this
   * process just created with a waiter, whose state at its commit needs no first read.
   */
  async awaitOutcome(tenantId: string, submissionId: string, seconds: number, signal?: AbortSignal, created?: SubmissionResult): Promise<{ view: SubmissionView; final: boolean }> {
    const { value, final } = await this.decisions.until(
      tenantId,
      submissionId,
      () => this.status(tenantId, submissionId),
      (view) => isFinal(view.status),
      seconds,
      signal,
      created?.kind === 'created' ? created : undefined,
    );
    return { view: value, final };
  }

  /** The same request as "Test now" (`connection.check_requested`); the monitor asks the validator and decides. */
  private async requestRevalidation(tenantId: string, active: ActiveCredential, caller: Caller, correlationId: string): Promise<void> {
    const { credentialId, last4 } = active;
    await this.dataSource.transaction(async (tx) => {
      await Outbox.stage(tx, createEvent('connection.check_requested', { tenantId, correlationId, producer: INTAKE.producer }, { credentialId }));
      await AuditLog.append(tx, {
        tenantId,
        actor: caller.actor,
        action: 'key.revalidation_requested',
        credentialId,
        last4,
        correlationId,
        details: { reason: 'same_key_submitted' },
      });
    });
    this.logger.info('Active key submitted again while reconnect is required; asked for it to be checked again', { credentialId, last4 });
  }

  /** The pasted key, or the refusal to answer once the attempt is counted (the body's shape or the key's format). */
  private parseKey(body: unknown): { key: ApiKey; refusal?: undefined } | { key?: undefined; refusal: Refusal; keyFormat: boolean } {
    let apiKey: string;
    try {
      ({ apiKey } = parseBody(KEY_SUBMISSION, body));
    } catch (error) {
      if (error instanceof Refusal) return { refusal: error, keyFormat: false };
      throw error;
    }
    const parsed = parseSubmittedKey(apiKey, { minLength: this.config.intake.keyMinLength, maxLength: this.config.intake.keyMaxLength });
    if (!parsed.ok) return { refusal: new Refusal(`key_${parsed.problem}`), keyFormat: true };
    registerSecret(parsed.key.reveal());
    return { key: parsed.key };
  }

  /** Before the transaction: the write is idempotent on the credential id, so a retry is safe. */
  private async storePending(tenantId: string, credentialId: string, key: ApiKey): Promise<void> {
    try {
      await this.secretStore.putPending(tenantId, credentialId, key);
    } catch (error) {
      if (error instanceof SecretStoreError && (error.transient || error.code === 'throttled' || error.code === 'unavailable')) {
        this.metrics.count('store_unavailable');
        this.logger.warn('Secret store unavailable; submission refused', { credentialId, code: error.code });
        throw new Refusal('secret_store_unavailable', { headers: { 'Retry-After': '30' } });
      }
      throw error;
    }
  }
}

/** The raw value is registered before anything can log it, trimmed or not. */
function registerRawKey(body: unknown): void {
  const raw = (body as { apiKey?: unknown } | null | undefined)?.apiKey;
  if (typeof raw === 'string') {
    registerSecret(raw);
    registerSecret(raw.trim());
  }
}
