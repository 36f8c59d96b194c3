import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createEvent, Refusal } from '@keyward/contracts';
import { Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { ConnectionRepository } from '../connections/connection.repository';
import { connectionStatus } from '../connections/connection-status';
import { INTAKE } from '../intake-identity';
import { SubmissionRateLimiter } from '../rate-limits/submission-rate-limiter';
import { Created, DecisionWait } from '../submissions/decision-wait';
import { checkView, ConnectionCheckView } from './check-outcome';
import { ConnectionCheckRepository } from './connection-check.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** States with an active key Pleo can be asked about (reconnect_required included: scopes may be back). */
const CHECKABLE = new Set(['active', 'degraded', 'reconnect_required']);

/** A check as requested, with a waiter registered before its commit when the caller will wait. */
export type RequestedCheck = Created<ConnectionCheckView>;

/**
 * "Test now": intake stages `connection.check_requested` (the event id is the check id); the
 * monitor turns it into `key.revalidate` (reason manual) and the validator's audit entry for the
 * answer carries the check id, which is where intake reads the outcome from (ADR 24).
 */
@Injectable()
export class ConnectionChecksService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ConnectionRepository) private readonly connections: ConnectionRepository,
    @Inject(ConnectionCheckRepository) private readonly checks: ConnectionCheckRepository,
    @Inject(SubmissionRateLimiter) private readonly rateLimiter: SubmissionRateLimiter,
    @Inject(DecisionWait) private readonly decisions: DecisionWait,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  /**
   * `waits`: the caller will wait for the outcome (`Prefer: wait`); then the answer carries a waiter
   * registered before the commit, for `awaitOutcome`.
   */
  async request(tenantId: string, caller: Caller, correlationId: string, waits = false): Promise<RequestedCheck> {
    const snapshot = await this.connections.snapshot(this.dataSource.manager, tenantId);
    const credentialId = snapshot.connection?.activeCredentialId;
    if (!credentialId || !CHECKABLE.has(connectionStatus(snapshot))) throw new Refusal('connection_not_checkable');
    await this.rateLimiter.consumeCheck(tenantId);
    const event = createEvent('connection.check_requested', { tenantId, correlationId, producer: INTAKE.producer }, { credentialId });
    const requestedAt = new Date();
    // The waiter before the commit: the answer cannot come before it, so the commit tells the first state.
    const { waiter } = await this.decisions.committing(tenantId, event.id, waits, () =>
      this.dataSource.transaction(async (tx) => {
        await Outbox.stage(tx, event);
        await AuditLog.append(tx, {
          tenantId,
          actor: caller.actor,
          action: 'connection.check_requested',
          credentialId,
          last4: snapshot.activeCredential?.last4 ?? null,
          correlationId,
          details: { checkId: event.id },
        });
      }),
    );
    this.logger.info('Connection check requested', { checkId: event.id, credentialId });
    return { view: checkView(event.id, requestedAt, null), waiter };
  }

  async find(tenantId: string, checkId: string): Promise<ConnectionCheckView> {
    if (!UUID.test(checkId)) throw new Refusal('check_not_found');
    const db = this.dataSource.manager;
    const requestedAt = await this.checks.requestedAt(db, tenantId, checkId);
    if (!requestedAt) throw new Refusal('check_not_found');
    return checkView(checkId, requestedAt, (await this.checks.answer(db, tenantId, checkId)) ?? null);
  }

  /**
   * The check once answered, or pending when `seconds` pass first. The answer's commit wakes the
   * waiter (a trigger on the validator's audit entry, migration 1764400000000), as a submission's
   * decision does; the slow re-check covers a lost notification. `requested`: the check as this
   * process just requested it, with a waiter, whose state at its commit needs no first read.
   */
  async awaitOutcome(tenantId: string, checkId: string, seconds: number, signal?: AbortSignal, requested?: RequestedCheck): Promise<{ view: ConnectionCheckView; final: boolean }> {
    const { value, final } = await this.decisions.until(
      tenantId,
      checkId,
      () => this.find(tenantId, checkId),
      (v) => v.status === 'completed',
      seconds,
      signal,
      requested,
    );
    return { view: value, final };
  }
}
