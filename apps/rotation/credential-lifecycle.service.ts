import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { causedBy, createEvent, EventData, EventEnvelope, EventType } from '@keyward/contracts';
import { Inbox, InboxEffects, PermanentEventError } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { AuditDetail, confirmUninstall, confirmVerdict, PipelinedStatement, readUninstall, SubmissionEntity } from '@keyward/persistence';
import { transactionsForPool } from './transactions-for-pool';
import { decideActivation, decideCompromise, decideRejection, decideUninstall, Refused, Unchanged } from './lifecycle-decisions';
import { LifecycleRepository, verdictAndSituationOf } from './lifecycle.repository';
import { ROTATION } from './rotation-identity';
import { RotationMetrics } from './rotation-metrics';
import { SecretLabels } from './secret-labels';

/** The consumer name of rotation's inbox rows. */

/**
 * AWSCURRENT is on a version rotation knows nothing about (changed outside keyward?). Not
 * permanent: the transport retries, and parks the event for an operator if it persists.
 */
class SecretLabelConflictError extends Error {
  readonly code = 'secret_label_conflict';
  constructor(message: string) {
    super(message);
    this.name = 'SecretLabelConflictError';
  }
}

/** What a step decided: a change it applied, nothing (and why), or a refusal to park. */
type StepOutcome = Unchanged | Refused | { kind: 'activate' | 'reject' | 'contain_compromise' | 'uninstall' };

/**
 * The credential lifecycle: activation, rejection, compromise and uninstall. Each event is
 * handled in one transaction that holds the tenant's lock, records the event in the inbox,
 * decides from the current database state (never from message order), runs the secret step —
 * idempotent, and before the commit, so a crash in between is finished by the redelivery — and
 * then commits state, outbox events and audit entries together.
 */
@Injectable()
export class CredentialLifecycleService {
  private readonly logger: KeywardLogger;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(LifecycleRepository) private readonly repository: LifecycleRepository,
    @Inject(SecretLabels) private readonly labels: SecretLabels,
    @Inject(RotationMetrics) private readonly metrics: RotationMetrics,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(KeywardLogger) logger: KeywardLogger,
  ) {
    // The rotation's transactions at once: its steps need a second connection now and then.
    Inbox.limitGroupCommit(dataSource, ROTATION.consumer, { maxInFlight: transactionsForPool(config.database.poolSize) });
    this.logger = logger.child({ component: 'credential-lifecycle' });
  }

  /**
   * `key.validated`: the newest pending credential becomes the tenant's active one — as the
   * validator recorded it: company, subject and scopes come from its `validations` row.
   */
  async activate(event: EventEnvelope<'key.validated'>): Promise<void> {
    const { tenantId } = event;
    const { credentialId } = event.data;
    const read = this.repository.verdictAndSituationRead(event.id, tenantId, credentialId);
    await this.handle(event, read, async (tx, effects, rows) => {
      const { verdict, situation, activeCompromised } = verdictAndSituationOf(rows);
      const confirmed = confirmVerdict(event, verdict);
      if (!confirmed) return this.unconfirmed(effects, event);
      const { companyId, subjectType, scopes } = confirmed;
      const decision = decideActivation(situation, confirmed);
      if (decision.kind !== 'activate') return decision;
      const submission = situation.submission!;

      // Secret first, database second: the redelivery of a crash in between repeats these steps.
      if (decision.reinstall) await this.labels.restore(tenantId);
      const moved = await this.moveCurrentLabel(tx, submission, decision.expectedCurrentVersionId);
      if (moved) return moved;
      const previousId = decision.previousCredentialId;
      // A key reported compromised whose replacement is decided before rotation handled the report
      // (the customer pasted a new key at once) goes out as compromised, with no readable value
      // left, whichever event rotation takes first; the report's own handling then finds it done.
      const replacedBecause = previousId && activeCompromised ? ('compromised' as const) : ('replaced' as const);
      if (previousId) await (replacedBecause === 'compromised' ? this.labels.disable(tenantId, previousId) : this.labels.retire(tenantId, previousId));

      const now = new Date();
      effects.write(
        this.repository.credentialInsert({
          submission,
          status: 'active',
          companyId,
          subjectType,
          subjectId: companyId,
          scopes,
          validatedAt: verdict!.decidedAt,
          activatedAt: now,
        }),
      );
      const previous = previousId ? await this.repository.invalidateCredential(tx, tenantId, previousId, replacedBecause) : null;
      effects.write(
        this.repository.connectionWrite(tenantId, situation.connection, {
          status: 'active',
          activeCredentialId: credentialId,
          ...(decision.bindsCompany ? { companyId, subjectType, subjectId: companyId } : {}),
          errorCode: null,
          errorDetail: null,
          activatedAt: now,
          lastValidatedAt: now,
        }),
      );

      effects.publish(
        this.cause(event, 'key.activated', { credentialId, companyId, ...(previousId ? { previousCredentialId: previousId } : {}) }),
        ...(previousId ? [this.cause(event, 'key.invalidated', { credentialId: previousId, reason: replacedBecause })] : []),
      );
      this.audit(effects, event, 'credential.activated', credentialId, submission.last4, {
        companyId,
        subjectType,
        scopes,
        companyBound: decision.bindsCompany,
        reinstall: decision.reinstall,
        previousCredentialId: previousId,
        submissionId: submission.id,
      });
      if (previousId) {
        this.audit(effects, event, 'credential.invalidated', previousId, previous?.last4 ?? null, { reason: replacedBecause, replacedBy: credentialId });
      }
      this.metrics.activations.inc({ kind: previousId ? 'replacement' : decision.reinstall ? 'reinstall' : 'first' });
      this.logger.info('Credential activated', { tenantId, credentialId, last4: submission.last4, previousCredentialId: previousId });
      return decision;
    });
  }

  /**
   * `key.rejected`: the newest pending credential is recorded as rejected; an active key stays.
   * Reason and message (shown to the customer) come from the validator's record.
   */
  async reject(event: EventEnvelope<'key.rejected'>): Promise<void> {
    const { tenantId } = event;
    const { credentialId } = event.data;
    const read = this.repository.verdictAndSituationRead(event.id, tenantId, credentialId);
    await this.handle(event, read, async (_tx, effects, rows) => {
      const { verdict, situation } = verdictAndSituationOf(rows);
      const confirmed = confirmVerdict(event, verdict);
      if (!confirmed) return this.unconfirmed(effects, event);
      const { reason, missingScopes, message } = confirmed;
      const decision = decideRejection(situation, confirmed);
      if (decision.kind !== 'reject') return decision;
      const submission = situation.submission!;

      // Only the rejected version's AWSPENDING goes; AWSCURRENT (the working key) is elsewhere.
      await this.labels.retire(tenantId, credentialId);
      // Storing this key brought an uninstalled tenant's secret back; with the key refused,
      // nothing keeps the uninstalled keys in it alive any more.
      const deletionScheduledFor = decision.schedulesDeletion ? await this.labels.scheduleDeletion(tenantId, this.config.secrets.recoveryWindowDays) : null;

      const detail = { missingScopes: missingScopes ?? [], message };
      effects.write(
        this.repository.credentialInsert({
          submission,
          status: 'rejected',
          rejectionReason: reason,
          rejectionDetail: detail,
          validatedAt: verdict!.decidedAt,
        }),
      );
      if (decision.connectionShowsRejection) {
        const wasUninstalled = situation.connection?.status === 'uninstalled';
        effects.write(
          this.repository.connectionWrite(tenantId, situation.connection, {
            status: 'not_connected',
            activeCredentialId: null,
            errorCode: reason,
            errorDetail: { credentialId, ...detail },
            // An uninstall released the company binding; a rejected reinstall does not restore it.
            ...(wasUninstalled ? { companyId: null, subjectType: null, subjectId: null } : {}),
          }),
        );
      }
      this.audit(effects, event, 'credential.rejected', credentialId, submission.last4, {
        reason,
        missingScopes: missingScopes ?? [],
        submissionId: submission.id,
        activeKeyKept: !decision.connectionShowsRejection,
        secretDeletionScheduledFor: deletionScheduledFor?.toISOString(),
      });
      this.metrics.rejections.inc({ reason });
      this.logger.info('Credential rejected', { tenantId, credentialId, last4: submission.last4, reason });
      return decision;
    });
  }

  /** `key.compromised`: the revocation already stops reads; this takes the key out of service for good. */
  async handleCompromise(event: EventEnvelope<'key.compromised'>): Promise<void> {
    const { tenantId } = event;
    const { credentialId, reportedBy } = event.data;
    await this.handle(event, undefined, async (tx, effects) => {
      // Intake commits the revocation before it publishes: without one, intake never sent this.
      if (!(await this.repository.isRevoked(tx, credentialId, tenantId))) return this.unconfirmed(effects, event);
      const connection = await this.repository.connection(tx, tenantId);
      const credential = await this.repository.credential(tx, tenantId, credentialId);
      // Whatever the state, the compromised version must keep no label and no readable value —
      // also in the secret of an uninstalled tenant, which must then stay scheduled for deletion.
      const secretVersion = await this.labels.disable(tenantId, credentialId);
      if (connection?.status === 'uninstalled') await this.labels.scheduleDeletion(tenantId, this.config.secrets.recoveryWindowDays);

      const decision = decideCompromise(connection, credential, credentialId);
      if (decision.kind !== 'contain_compromise') return decision;
      const last4 = credential?.last4 ?? null;
      const since = new Date().toISOString();
      const events: EventEnvelope[] = [];
      if (decision.marksCredential) {
        if (credential?.status === 'active') events.push(this.cause(event, 'key.invalidated', { credentialId, reason: 'compromised' as const }));
        await this.repository.invalidateCredential(tx, tenantId, credentialId, 'compromised');
      }
      if (decision.disablesConnection) {
        await this.repository.saveConnection(tx, tenantId, connection, {
          status: 'disabled',
          activeCredentialId: null,
          errorCode: 'key_compromised',
          errorDetail: { credentialId, reportedBy },
        });
        events.push(this.cause(event, 'connection.disabled', { reason: 'key_compromised', since }));
      }
      effects.publish(...events);
      this.audit(effects, event, 'credential.compromised', credentialId, last4, {
        reportedBy,
        secretVersion,
        wasActive: decision.disablesConnection,
      });
      if (decision.disablesConnection) {
        this.audit(effects, event, 'connection.disabled', credentialId, last4, { reason: 'key_compromised' });
      }
      this.metrics.compromises.inc({ outcome: decision.disablesConnection ? 'connection_disabled' : 'already_replaced' });
      this.logger.warn('Compromised credential taken out of service', { tenantId, credentialId, last4, connectionDisabled: decision.disablesConnection });
      return decision;
    });
  }

  /** `connection.uninstalled`: credentials invalidated, secret deletion scheduled, audit log kept. */
  async uninstall(event: EventEnvelope<'connection.uninstalled'>): Promise<void> {
    const { tenantId } = event;
    await this.handle(event, undefined, async (tx, effects) => {
      if (!confirmUninstall(event, await readUninstall(tx, event.id))) return this.unconfirmed(effects, event);
      const connection = await this.repository.connection(tx, tenantId);
      const activeId = connection?.activeCredentialId ?? null;
      const activeRevoked = activeId ? await this.repository.isRevoked(tx, activeId) : false;
      const decision = decideUninstall(connection, activeRevoked);
      if (decision.kind !== 'uninstall') return decision;

      // Labels off the uninstalled versions, so a reinstall promotes onto a clean secret.
      const pendingIds = await this.repository.revokedPendingCredentialIds(tx, tenantId);
      for (const versionId of [...(activeId ? [activeId] : []), ...pendingIds]) await this.labels.retire(tenantId, versionId);
      const recoveryWindowDays = this.config.secrets.recoveryWindowDays;
      const deletionScheduledFor = await this.labels.scheduleDeletion(tenantId, recoveryWindowDays);

      if (activeId) {
        const active = await this.repository.invalidateCredential(tx, tenantId, activeId, 'uninstalled');
        effects.publish(this.cause(event, 'key.invalidated', { credentialId: activeId, reason: 'uninstalled' as const }));
        this.audit(effects, event, 'credential.invalidated', activeId, active?.last4 ?? null, { reason: 'uninstalled' });
      }
      await this.repository.saveConnection(tx, tenantId, connection, { status: 'uninstalled', activeCredentialId: null, errorCode: null, errorDetail: null });
      this.audit(effects, event, 'connection.uninstalled', null, null, {
        reason: event.data.reason,
        recoveryWindowDays,
        secretDeletionScheduledFor: deletionScheduledFor?.toISOString() ?? null,
        pendingCredentialsRetired: pendingIds,
      });
      this.metrics.uninstalls.inc();
      this.logger.info('Connection uninstalled', { tenantId, recoveryWindowDays });
      return decision;
    });
  }

  /**
   * Moves AWSCURRENT onto the submission's version. Returns nothing when it is there (moved now,
   * or by an earlier attempt that crashed before its commit), or why the event changes nothing.
   */
  private async moveCurrentLabel(tx: EntityManager, submission: SubmissionEntity, expectedCurrentVersionId: string | null): Promise<Unchanged | undefined> {
    const { tenantId, secretVersionId } = submission;
    const first = await this.labels.promote(tenantId, secretVersionId, expectedCurrentVersionId);
    if (first.promoted) return undefined;

    // AWSCURRENT is not where the database says. Under the tenant lock no other rotation step
    // runs, so the label was left there by a step that never committed, or moved outside keyward.
    const holderId = first.currentVersionId;
    const holder = holderId ? await this.repository.submissionOfVersion(tx, tenantId, holderId) : null;
    if (holderId && !holder) {
      this.metrics.conflicts.inc({ resolution: 'unresolved' });
      throw new SecretLabelConflictError(`AWSCURRENT of tenant ${tenantId} is on version ${holderId}, which is no submission of this tenant`);
    }
    if (holder && BigInt(holder.seq) > BigInt(submission.seq)) {
      this.metrics.conflicts.inc({ resolution: 'stale_event' });
      return { kind: 'unchanged', why: 'superseded' };
    }
    // An older or inactive key holds the label (or none does): the newest validated key takes it.
    this.logger.warn('AWSCURRENT was not on the active credential; taking it over', {
      tenantId,
      credentialId: submission.credentialId,
      expectedVersionId: expectedCurrentVersionId,
      foundVersionId: holderId,
    });
    const second = await this.labels.promote(tenantId, secretVersionId, holderId);
    if (!second.promoted) {
      this.metrics.conflicts.inc({ resolution: 'unresolved' });
      throw new SecretLabelConflictError(`AWSCURRENT of tenant ${tenantId} moved while rotation held the tenant lock`);
    }
    this.metrics.conflicts.inc({ resolution: 'taken_over' });
    return undefined;
  }

  /**
   * Inbox, tenant lock and transaction around one step (steps that arrive together share one,
   * ADR 0039); logs and counts what did not change.
   */
  private async handle(event: EventEnvelope, read: PipelinedStatement | undefined, step: (tx: EntityManager, effects: InboxEffects, read: unknown[]) => Promise<StepOutcome>): Promise<void> {
    const result = await Inbox.runOnce(
      this.dataSource,
      ROTATION.consumer,
      event,
      async (tx, effects, rows) => {
        const outcome = await step(tx, effects, rows);
        // Refused: roll back the inbox row too, so the parked event can be replayed once fixed.
        if (outcome.kind === 'refused') throw new PermanentEventError(outcome.message, outcome.code);
        return outcome;
      },
      // The tenant lock is taken with the inbox claim, in the same statement; the step's read after it, in the same round trip.
      { lock: this.repository.tenantLock(event.tenantId), read },
    );
    if (result.duplicate) {
      this.logger.debug('Event already handled; nothing to do', { type: event.type, eventId: event.id });
      this.metrics.unchanged.inc({ event: event.type, why: 'duplicate_event' });
      return;
    }
    if (result.result.kind === 'unchanged') {
      const { why } = result.result;
      this.logger.debug('Event changes nothing', { type: event.type, eventId: event.id, tenantId: event.tenantId, why });
      this.metrics.unchanged.inc({ event: event.type, why });
    }
  }

  /**
   * An event its owner has no record of: somebody other than the owner published it. It changes
   * nothing; it is counted and written to the tenant's audit log for whoever investigates.
   */
  private unconfirmed(effects: InboxEffects, event: EventEnvelope): Unchanged {
    this.metrics.unconfirmed.inc({ type: event.type });
    this.logger.warn("Event ignored: its owner's table has no record of it", { type: event.type, eventId: event.id, tenantId: event.tenantId, producer: event.producer });
    const credentialId = 'credentialId' in event.data ? event.data.credentialId : null;
    this.audit(effects, event, 'event.unconfirmed', credentialId ?? null, null, { producer: event.producer });
    return { kind: 'unchanged', why: 'unconfirmed' };
  }

  private cause<T extends EventType>(cause: EventEnvelope, type: T, data: EventData<T>): EventEnvelope<T> {
    return createEvent(type, causedBy(cause, ROTATION.producer), data);
  }

  private audit(effects: InboxEffects, event: EventEnvelope, action: string, credentialId: string | null, last4: string | null, details: Record<string, AuditDetail | undefined>): void {
    const defined = Object.fromEntries(Object.entries(details).filter(([, v]) => v !== undefined)) as Record<string, AuditDetail>;
    effects.audit({
      tenantId: event.tenantId,
      actor: ROTATION.actor,
      action,
      credentialId,
      last4,
      correlationId: event.correlationId,
      details: { ...defined, eventId: event.id, eventType: event.type },
    });
  }
}
