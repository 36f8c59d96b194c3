import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { causedBy, createEvent, EventEnvelope } from '@keyward/contracts';
import { Inbox, InboxEffects } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { AuditDetail, confirmVerdict, readValidation } from '@keyward/persistence';
import { ConnectionHealthRepository, LockedHealth } from './connection-health.repository';
import { failureRecord } from './failure-report-scrub';
import { AuthFailureDecision, decideAuthFailure, decideRevalidation, describesOldKey, HealthRules, healthRules, RevalidationDecision } from './health-decisions';
import { HealthLifecycleService } from './health-lifecycle.service';
import { LifecycleFactsRepository } from './lifecycle-facts.repository';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR } from './monitor-identity';
import { ProviderIncidentService } from './provider-incident.service';
import { reconnectionAlert } from './reconnection-alert';

export type AuthFailureResult = 'duplicate' | 'not_counted' | 'counted' | 'degraded' | 'suppressed_by_provider_incident';

export type RevalidationResult = 'duplicate' | 'unconfirmed' | 'stale' | 'recovered' | 'confirmed_healthy' | 'reconnect_required' | 'already_reconnect_required' | 'retry_later';

/**
 * An auth failure's way to a degraded connection, a revalidation and, when Pleo confirms the key
 * is dead, one reconnection alert. `health-decisions.ts` decides each step from the database state
 * read under the tenant's health-row lock, so replicas and out-of-order events agree; this service
 * reads that state, and commits each outcome with its events (outbox), audit entries and inbox row.
 */
@Injectable()
export class ConnectionHealthService {
  private readonly rules: HealthRules;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(ConnectionHealthRepository) private readonly health: ConnectionHealthRepository,
    @Inject(LifecycleFactsRepository) private readonly facts: LifecycleFactsRepository,
    @Inject(HealthLifecycleService) private readonly lifecycle: HealthLifecycleService,
    @Inject(ProviderIncidentService) private readonly provider: ProviderIncidentService,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {
    this.rules = healthRules(config);
  }

  async onAuthFailed(event: EventEnvelope<'auth.failed'>): Promise<AuthFailureResult> {
    const { tenantId, data } = event;
    // Free text from other backends, kept for 90 days: never a query string or credentials.
    const failure = failureRecord(event);
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR.consumer, event, async (tx, effects): Promise<AuthFailureResult> => {
      // The usual case in one round trip; a missing or outdated health row is repaired first.
      let counted = await this.health.recordFailure(tx, failure);
      if (!counted && (await this.lifecycle.startMonitoring(tx, effects, event))) counted = await this.health.recordFailure(tx, failure);
      if (!counted) await this.health.recordIgnoredFailure(tx, failure);
      const decision = decideAuthFailure(counted, failure.credentialId, this.rules);
      if (decision.kind !== 'breached') return decision.kind;
      const incident = await this.provider.openIfWidespread(tx, effects, event);
      if (incident) {
        if (incident.opened) this.metrics.providerIncidents.inc({ event: 'opened' });
        return 'suppressed_by_provider_incident';
      }
      await this.degrade(tx, effects, event, decision);
      return 'degraded';
    });

    const result = outcome.duplicate ? 'duplicate' : outcome.result;
    if (result !== 'duplicate') this.metrics.authFailures.inc({ status: String(data.status), counted: String(result !== 'not_counted') });
    if (result === 'degraded') {
      this.metrics.transitions.inc({ state: 'degraded', reason: 'auth_failures' });
      this.metrics.probes.inc({ reason: 'auth_failures' });
    }
    if (result === 'suppressed_by_provider_incident') {
      this.logger.debug('Failure threshold reached during a provider incident; connection left as is', { tenantId });
    }
    return result;
  }

  async onRevalidated(event: EventEnvelope<'key.revalidated'>): Promise<RevalidationResult> {
    let decision: RevalidationDecision | undefined;
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR.consumer, event, async (tx, effects): Promise<RevalidationResult> => {
      // The outcome is the one the validator recorded for this event, not what the message says.
      const verdict = confirmVerdict(event, await readValidation(tx, event.id));
      if (!verdict) return this.unconfirmed(effects, event);
      const health = await this.lockCurrent(tx, effects, event);
      decision = decideRevalidation(health, verdict, this.rules);
      if (!health || decision.kind === 'stale') return 'stale';
      switch (decision.kind) {
        case 'healthy':
          return this.recover(tx, effects, event, health, decision.recovers);
        case 'reconnect_required':
          return this.requireReconnect(tx, effects, event, health, decision);
        case 'retry_later':
          if (decision.reschedules) await this.health.retryLater(tx, event.tenantId, decision.reason);
          if (decision.mayBeProviderIncident && (await this.provider.openIfWidespread(tx, effects, event))?.opened) {
            this.metrics.providerIncidents.inc({ event: 'opened' });
          }
          return 'retry_later';
      }
    });
    const result = outcome.duplicate ? 'duplicate' : outcome.result;
    if (result === 'recovered') this.metrics.transitions.inc({ state: 'healthy', reason: 'revalidated' });
    if (result === 'reconnect_required' && decision?.kind === 'reconnect_required') {
      this.metrics.transitions.inc({ state: 'reconnect_required', reason: decision.reason });
      this.metrics.alerts.inc({ kind: 'reconnection_required', reason: decision.reason });
    }
    return result;
  }

  /** Locks the tenant's health row, first starting it afresh when it describes an old key. */
  private async lockCurrent(tx: EntityManager, effects: InboxEffects, cause: EventEnvelope): Promise<LockedHealth | undefined> {
    const health = await this.health.lock(tx, cause.tenantId);
    if (health && !describesOldKey(health)) return health;
    return (await this.lifecycle.startMonitoring(tx, effects, cause)) ? this.health.lock(tx, cause.tenantId) : undefined;
  }

  private async degrade(tx: EntityManager, effects: InboxEffects, cause: EventEnvelope<'auth.failed'>, breached: Extract<AuthFailureDecision, { kind: 'breached' }>): Promise<void> {
    const { reason, credentialId, failures } = breached;
    const since = await this.health.degrade(tx, cause.tenantId, reason, randomUUID());
    const origin = causedBy(cause, MONITOR.producer);
    effects.publish(createEvent('connection.degraded', origin, { reason, since: since.toISOString() }), createEvent('key.revalidate', origin, { credentialId, reason: 'auth_failures' }));
    await this.audit(tx, effects, cause, 'connection.degraded', credentialId, { reason, failures, windowSeconds: this.config.monitor.failureWindowSeconds });
    this.logger.info('Connection degraded; asked the validator to revalidate the key', { tenantId: cause.tenantId, reason, failures });
  }

  private async recover(tx: EntityManager, effects: InboxEffects, cause: EventEnvelope<'key.revalidated'>, health: LockedHealth, recovers: boolean): Promise<RevalidationResult> {
    const since = await this.health.markHealthy(tx, cause.tenantId);
    if (!recovers) return 'confirmed_healthy';
    effects.publish(createEvent('connection.recovered', causedBy(cause, MONITOR.producer), { reason: 'revalidated', since: since.toISOString() }));
    await this.audit(tx, effects, cause, 'connection.recovered', health.credentialId, { previousState: health.state, reason: 'revalidated' });
    this.logger.info('Connection recovered: Pleo still accepts the key', { tenantId: cause.tenantId, previousState: health.state });
    return 'recovered';
  }

  private async requireReconnect(
    tx: EntityManager,
    effects: InboxEffects,
    cause: EventEnvelope<'key.revalidated'>,
    health: LockedHealth,
    decision: Extract<RevalidationDecision, { kind: 'reconnect_required' }>,
  ): Promise<RevalidationResult> {
    const { reason, missingScopes } = decision;
    const since = await this.health.requireReconnect(tx, cause.tenantId, reason, missingScopes, decision.incidentId ?? randomUUID());
    if (!decision.alerts) return 'already_reconnect_required';
    const last4 = await this.facts.last4(tx, health.credentialId);
    effects.publish(createEvent('alert.reconnection_required', causedBy(cause, MONITOR.producer), reconnectionAlert({ reason, companyId: health.companyId, last4, since, missingScopes })));
    await this.audit(tx, effects, cause, 'connection.reconnect_required', health.credentialId, { reason, previousState: health.state, ...(missingScopes?.length ? { missingScopes } : {}) }, last4);
    this.logger.warn('Pleo no longer accepts the key; asked the customer to reconnect', { tenantId: cause.tenantId, reason, missingScopes });
    return 'reconnect_required';
  }

  /** A key.revalidated the validator has no record of: counted, audited, and otherwise ignored. */
  private unconfirmed(effects: InboxEffects, event: EventEnvelope<'key.revalidated'>): RevalidationResult {
    this.metrics.unconfirmed.inc({ type: event.type });
    this.logger.warn('Event ignored: the validator has no record of it', { type: event.type, eventId: event.id, tenantId: event.tenantId, producer: event.producer });
    effects.audit({
      tenantId: event.tenantId,
      actor: MONITOR.actor,
      action: 'event.unconfirmed',
      credentialId: event.data.credentialId,
      last4: null,
      correlationId: event.correlationId,
      details: { eventId: event.id, eventType: event.type, producer: event.producer },
    });
    return 'unconfirmed';
  }

  private async audit(tx: EntityManager, effects: InboxEffects, cause: EventEnvelope, action: string, credentialId: string, details: Record<string, AuditDetail>, last4?: string): Promise<void> {
    effects.audit({
      tenantId: cause.tenantId,
      actor: MONITOR.actor,
      action,
      credentialId,
      last4: last4 ?? (await this.facts.last4(tx, credentialId)),
      correlationId: cause.correlationId,
      details,
    });
  }
}
