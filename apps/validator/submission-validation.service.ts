import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { boundCompany, causedBy, createEvent, EventEnvelope } from '@keyward/contracts';
import { ApiKey } from '@keyward/key-material';
import { DeliveryInfo, Inbox, PermanentEventError } from '@keyward/messaging';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { describeFailure, PleoClient, PleoUnexpectedResponse, PleoUnreachable } from '@keyward/pleo';
import { SecretReader, SecretStoreError } from '@keyward/secrets';
import { ValidationDeferredError } from './validation-errors';
import { ValidationRepository, verdictContextOf } from './validation.repository';
import { retryBudgetMs } from './validation-retry-policy';
import { VALIDATOR } from './validator-identity';
import { judgeSubmission } from './verdict';

export type SubmissionOutcome = 'duplicate' | 'unknown_submission' | 'not_newest' | 'revoked' | 'validated' | 'rejected';

/**
 * Decides what a submitted key is worth: reads the pending version, asks Pleo who it belongs to
 * and what it may do, and publishes `key.validated` or `key.rejected` — or, when Pleo cannot be
 * reached, records why the submission is still pending and hands the event back for a retry.
 */
@Injectable()
export class SubmissionValidationService {
  private readonly logger: KeywardLogger;
  private readonly outcomes;
  private readonly budgetMs: number;

  constructor(
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ValidationRepository) private readonly repository: ValidationRepository,
    @Inject(SecretReader) private readonly secrets: SecretReader,
    @Inject(PleoClient) private readonly pleo: PleoClient,
    @Inject(KeywardLogger) logger: KeywardLogger,
    @Inject(Metrics) metrics: Metrics,
  ) {
    this.logger = logger.child({ component: 'submission-validation' });
    this.outcomes = metrics.counter('keyward_validations_total', 'Submitted keys handled by the validator, by outcome', ['outcome', 'reason']);
    this.budgetMs = retryBudgetMs(config);
  }

  async validate(event: EventEnvelope<'key.submitted'>, delivery: DeliveryInfo): Promise<SubmissionOutcome> {
    const { tenantId } = event;
    const { submissionId, credentialId, last4 } = event.data;
    const facts = { tenantId, submissionId, credentialId, last4, eventId: event.id, attempt: delivery.attempt };
    const dataSource = this.dataSource;

    // One look before the slow work; Inbox.runOnce and the verdict transaction still decide.
    const look = await this.repository.beforeValidating(this.dataSource.manager, { eventId: event.id, tenantId, submissionId });
    if (look.seen) return this.count('duplicate');
    const { submission } = look;
    if (!submission || submission.tenantId !== tenantId || submission.credentialId !== credentialId) {
      // Intake commits the row with the event, so this is a bug or a foreign event: keep it for a person.
      this.logger.error('key.submitted names no matching submission; event parked for an operator', facts);
      throw new PermanentEventError(`No submission ${submissionId} with credential ${credentialId} for tenant ${tenantId}`, 'unknown_submission');
    }
    if (!look.newestPending) {
      this.logger.info('Submission is no longer the newest pending one; not validating it', facts);
      return this.count('not_newest');
    }
    // A revoked credential is refused by the reader itself (it checks revocations first).
    const key = await this.readPendingKey(tenantId, credentialId, facts);
    if (!key) return this.count('revoked');

    const introspection = await this.pleo.introspect(key);
    if (introspection.outcome === 'unreachable' || introspection.outcome === 'unexpected_response') {
      if (!(await this.repository.isNewestPending(this.dataSource.manager, tenantId, submissionId))) {
        this.logger.info('A newer submission arrived while Pleo was unreachable; not retrying this one', facts);
        return this.count('not_newest');
      }
      return this.deferForOutage(event, delivery, introspection, facts);
    }

    // Decided inside the transaction (its read goes with the claim): a newer submission may have arrived while Pleo answered.
    const read = this.repository.verdictContextRead(tenantId, submissionId);
    const result = await Inbox.runOnce(
      dataSource,
      VALIDATOR.consumer,
      event,
      async (_tx, effects, rows) => {
        const { newestPending, connection } = verdictContextOf(rows);
        if (!newestPending) return 'not_newest' as const;
        const verdict = judgeSubmission(introspection, {
          requiredScopes: this.config.pleo.requiredScopes,
          boundCompanyId: boundCompany(connection),
        });
        // Unreachable was handled above; an answer about the key is always a verdict.
        if (verdict.kind === 'retry') throw new Error('unreachable introspection reached the verdict transaction');

        const origin = causedBy(event, VALIDATOR.producer);
        if (verdict.kind === 'validated') {
          const validated = createEvent('key.validated', origin, {
            submissionId,
            credentialId,
            companyId: verdict.companyId,
            subjectType: verdict.subjectType,
            scopes: verdict.scopes.slice(0, 200),
          });
          effects.write(this.repository.submissionVerdictWrite(validated));
          effects.publish(validated);
          effects.audit({
            tenantId,
            actor: VALIDATOR.actor,
            action: 'credential.validated',
            credentialId,
            last4,
            correlationId: event.correlationId,
            details: { submissionId, companyId: verdict.companyId, subjectType: verdict.subjectType, scopes: verdict.scopes },
          });
        } else {
          const rejected = createEvent('key.rejected', origin, {
            submissionId,
            credentialId,
            reason: verdict.reason,
            ...(verdict.missingScopes ? { missingScopes: verdict.missingScopes } : {}),
            message: verdict.message,
          });
          effects.write(this.repository.submissionVerdictWrite(rejected));
          effects.publish(rejected);
          effects.audit({
            tenantId,
            actor: VALIDATOR.actor,
            action: 'credential.rejected',
            credentialId,
            last4,
            correlationId: event.correlationId,
            details: { submissionId, reason: verdict.reason, missingScopes: verdict.missingScopes ?? [] },
          });
        }
        return verdict;
      },
      { read },
    );

    if (result.duplicate) return this.count('duplicate');
    if (result.result === 'not_newest') {
      this.logger.info('A newer submission arrived while Pleo answered; result dropped', facts);
      return this.count('not_newest');
    }
    const verdict = result.result;
    if (verdict.kind === 'validated') {
      this.logger.info('Key validated', { ...facts, companyId: verdict.companyId, subjectType: verdict.subjectType });
      return this.count('validated');
    }
    this.logger.info('Key rejected', { ...facts, reason: verdict.reason, missingScopes: verdict.missingScopes });
    return this.count('rejected', verdict.reason);
  }

  /** The pending version's key, or undefined when it was revoked meanwhile (drop the event). */
  private async readPendingKey(tenantId: string, credentialId: string, facts: Record<string, unknown>): Promise<ApiKey | undefined> {
    try {
      return await this.secrets.readForUse(tenantId, credentialId);
    } catch (error) {
      if (!(error instanceof SecretStoreError)) throw error;
      if (error.code === 'revoked') {
        this.logger.info('Pending credential was revoked before validation; not calling Pleo', facts);
        return undefined;
      }
      if (error.transient) throw error; // the transport retries
      this.logger.error('The pending key cannot be read from the secret store; event parked for an operator', { ...facts, code: error.code });
      throw new PermanentEventError(`Pending key of credential ${credentialId} unreadable (${error.code})`, `secret_${error.code}`);
    }
  }

  /**
   * Pleo gave no answer: the submission stays pending_validation with lastError
   * `pleo_unreachable` (committed now, for the status endpoint), and the event is retried until
   * the budget is spent — never rejected because of an outage.
   */
  private async deferForOutage(event: EventEnvelope<'key.submitted'>, delivery: DeliveryInfo, failure: PleoUnreachable | PleoUnexpectedResponse, facts: Record<string, unknown>): Promise<never> {
    const { tenantId } = event;
    const { credentialId, last4 } = event.data;
    const dataSource = this.dataSource;
    const { attempts, spent, firstFailureAt } = await dataSource.transaction(async (tx) => {
      const row = await this.repository.recordTransientFailure(tx, tenantId, credentialId, 'pleo_unreachable');
      const started = Math.min(row.firstFailureAt.getTime(), delivery.firstFailureAt?.getTime() ?? Infinity);
      const budgetSpent = Date.now() - started >= this.budgetMs;
      if (budgetSpent) {
        await this.repository.markParked(tx, credentialId);
        await AuditLog.append(tx, {
          tenantId,
          actor: VALIDATOR.actor,
          action: 'credential.validation_parked',
          credentialId,
          last4,
          correlationId: event.correlationId,
          details: { submissionId: event.data.submissionId, attempts: row.attempts, lastError: 'pleo_unreachable' },
        });
      } else if (row.attempts === 1) {
        await AuditLog.append(tx, {
          tenantId,
          actor: VALIDATOR.actor,
          action: 'credential.validation_deferred',
          credentialId,
          last4,
          correlationId: event.correlationId,
          details: { submissionId: event.data.submissionId, lastError: 'pleo_unreachable', pleo: failureLabel(failure) },
        });
      }
      return { attempts: row.attempts, spent: budgetSpent, firstFailureAt: new Date(started) };
    });

    const why = { ...facts, attempts, pleo: failureLabel(failure), pleoDetail: describeFailure(failure), firstFailureAt: firstFailureAt.toISOString() };
    if (spent) {
      this.logger.error(
        `Validation parked: Pleo could not be reached for ${formatHours(this.budgetMs)} while validating this submission. ` +
          'It stays pending_validation (not rejected). Check Pleo status and the keyward_pleo_* metrics; once Pleo answers, ' +
          'move the event from the validator parked queue back to the validator queue, or ask the customer to submit the key again.',
        why,
      );
      this.count('parked', failureLabel(failure));
      throw new PermanentEventError(`Validation of credential ${credentialId} gave up after ${attempts} attempts: ${describeFailure(failure)}`, 'validation_retry_budget_spent');
    }
    this.logger.warn('Pleo could not be reached while validating a key; the submission stays pending and will be retried', why);
    this.count('deferred', failureLabel(failure));
    throw new ValidationDeferredError(failure, attempts);
  }

  private count<T extends SubmissionOutcome>(outcome: T | 'parked' | 'deferred', reason = ''): T {
    this.outcomes.inc({ outcome, reason });
    return outcome as T;
  }
}

function failureLabel(failure: PleoUnreachable | PleoUnexpectedResponse): string {
  return failure.outcome === 'unreachable' ? failure.reason : 'unexpected_response';
}

function formatHours(ms: number): string {
  return ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : `${Math.round(ms / 1_000)} s`;
}
