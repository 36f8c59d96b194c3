import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { causedBy, compareTenantIds, createEvent, EventEnvelope } from '@keyward/contracts';
import { Inbox, InboxEffects } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { ConnectionHealthRepository, RecordedFailure } from './connection-health.repository';
import type { AuthFailureResult } from './connection-health.service';
import { FailureRecord, failureRecord } from './failure-report-scrub';
import { AuthFailureBatchDecision, decideAuthFailures, TenantFailures } from './auth-failure-batch-decisions';
import { DegradeReason, HealthRules, healthRules } from './health-decisions';
import { HealthLifecycleService } from './health-lifecycle.service';
import { LifecycleFactsRepository } from './lifecycle-facts.repository';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR } from './monitor-identity';
import { ProviderIncidentService } from './provider-incident.service';

type Decided = Extract<AuthFailureBatchDecision, { kind: 'decided' }>;

/** What a batch's transaction decided, reported (metrics, logs) once it committed. */
interface BatchOutcome {
  outcomes: Map<string, AuthFailureResult>;
  degraded: { tenantId: string; reason: DegradeReason; failures: number }[];
  incidentOpened: boolean;
}

/**
 * The auth.failed of one batch decided together (ADR 0035), with the outcomes
 * `ConnectionHealthService.onAuthFailed` would have reached one event after the other: the
 * tenants' rows locked in one order, every failure recorded and every window counted in one
 * statement, `decideAuthFailures` over the result, then the degraded connections, their events and
 * audit entries, and a provider incident if one opens, written together. Used by the event server
 * inside a batch's transaction; if anything fails the batch is rolled back and its events go one by
 * one through `onAuthFailed`.
 */
@Injectable()
export class AuthFailureBatchService {
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

  /** Each event's result, in the order given; `duplicate` for an event processed before or given twice. */
  async onAuthFailures(events: EventEnvelope<'auth.failed'>[]): Promise<AuthFailureResult[]> {
    const batch = await Inbox.runMany(this.dataSource, MONITOR.consumer, events, (tx, fresh, effects) => this.decide(tx, effects, fresh));
    const seen = new Set<string>();
    const counts = new Map<string, { status: string; counted: string; n: number }>();
    const results = events.map((event): AuthFailureResult => {
      const result = batch.outcomes.get(event.id);
      if (!result || seen.has(event.id)) return 'duplicate';
      seen.add(event.id);
      const labels = { status: String(event.data.status), counted: String(result !== 'not_counted') };
      const key = `${labels.status}/${labels.counted}`;
      counts.set(key, { ...labels, n: (counts.get(key)?.n ?? 0) + 1 });
      if (result === 'suppressed_by_provider_incident') this.logger.debug('Failure threshold reached during a provider incident; connection left as is', { tenantId: event.tenantId });
      return result;
    });
    for (const { n, ...labels } of counts.values()) this.metrics.authFailures.inc(labels, n);
    if (batch.incidentOpened) this.metrics.providerIncidents.inc({ event: 'opened' });
    for (const { tenantId, reason, failures } of batch.degraded) {
      this.metrics.transitions.inc({ state: 'degraded', reason: 'auth_failures' });
      this.metrics.probes.inc({ reason: 'auth_failures' });
      this.logger.info('Connection degraded; asked the validator to revalidate the key', { tenantId, reason, failures });
    }
    return results;
  }

  private async decide(tx: EntityManager, effects: InboxEffects, fresh: EventEnvelope<'auth.failed'>[]): Promise<BatchOutcome> {
    const byId = new Map(fresh.map((e) => [e.id, e]));
    // Free text from other backends, kept for 90 days: never a query string or credentials.
    const failures = fresh.map(failureRecord);
    const recorded = await this.health.recordFailures(tx, failures);
    const inPlace = new Set(recorded.map((r) => r.eventId));
    const missing = failures.filter((f) => !inPlace.has(f.eventId));
    if (missing.length > 0) recorded.push(...(await this.repairAndRecord(tx, effects, missing, byId)));

    const tenants = byTenant(recorded);
    let decision = decideAuthFailures(tenants, this.rules);
    if (decision.kind === 'needs_signal') {
      decision = await this.provider.decideOnSignal(
        tx,
        (signal) => decideAuthFailures(tenants, this.rules, signal),
        (d) => d.kind !== 'decided' || d.opensIncident !== undefined,
      );
    }
    if (decision.kind !== 'decided') throw new Error('The batch could not be decided with the provider signal');

    const outcomes = new Map<string, AuthFailureResult>(failures.map((f) => [f.eventId, decision.outcomes.get(f.eventId) ?? 'not_counted']));
    let incidentOpened = false;
    if (decision.opensIncident) {
      const { eventId, decision: open, signal } = decision.opensIncident;
      const incident = await this.provider.open(tx, effects, byId.get(eventId)!, open, signal);
      // Another replica's incident closed in between: the one-by-one path decides these events.
      if (!incident) throw new Error('A provider incident was due but none is open; the batch is handled one by one');
      incidentOpened = incident.opened;
    }
    await this.degrade(tx, effects, decision.degrades, byId);
    return { outcomes, incidentOpened, degraded: decision.degrades.map((d) => ({ tenantId: d.tenantId, reason: d.breach.reason, failures: d.breach.failures })) };
  }

  /**
   * As the one-event path: a tenant without a row for its active key gets a fresh one (its earliest
   * failure the cause), then its failures are recorded again; the failures of a tenant with no
   * active key are kept for review only.
   */
  private async repairAndRecord(tx: EntityManager, effects: InboxEffects, missing: FailureRecord[], byId: Map<string, EventEnvelope<'auth.failed'>>): Promise<RecordedFailure[]> {
    const earliest = new Map<string, FailureRecord>();
    for (const f of missing) {
      const first = earliest.get(f.tenantId);
      if (!first || Date.parse(f.observedAt) < Date.parse(first.observedAt)) earliest.set(f.tenantId, f);
    }
    const started = new Set<string>();
    for (const [tenantId, first] of [...earliest].sort(([a], [b]) => compareTenantIds(a, b))) {
      if (await this.lifecycle.startMonitoring(tx, effects, byId.get(first.eventId)!)) started.add(tenantId);
    }
    const again = await this.health.recordFailures(
      tx,
      missing.filter((f) => started.has(f.tenantId)),
    );
    const recordedAgain = new Set(again.map((r) => r.eventId));
    await this.health.recordIgnoredFailures(
      tx,
      missing.filter((f) => !recordedAgain.has(f.eventId)),
    );
    return again;
  }

  /** The connections the batch degrades, in lock order: their rows, events, audit entries. */
  private async degrade(tx: EntityManager, effects: InboxEffects, degrades: Decided['degrades'], byId: Map<string, EventEnvelope<'auth.failed'>>): Promise<void> {
    if (degrades.length === 0) return;
    const since = await this.health.degradeMany(
      tx,
      degrades.map((d) => ({ tenantId: d.tenantId, reason: d.breach.reason, incidentId: randomUUID() })),
    );
    effects.publish(
      ...degrades.flatMap(({ tenantId, eventId, breach }) => {
        const origin = causedBy(byId.get(eventId)!, MONITOR.producer);
        return [
          createEvent('connection.degraded', origin, { reason: breach.reason, since: since.get(tenantId)!.toISOString() }),
          createEvent('key.revalidate', origin, { credentialId: breach.credentialId, reason: 'auth_failures' }),
        ];
      }),
    );
    const last4 = await this.facts.last4Many(
      tx,
      degrades.map((d) => d.breach.credentialId),
    );
    for (const { tenantId, eventId, breach } of degrades) {
      effects.audit({
        tenantId,
        actor: MONITOR.actor,
        action: 'connection.degraded',
        credentialId: breach.credentialId,
        last4: last4.get(breach.credentialId)!,
        correlationId: byId.get(eventId)!.correlationId,
        details: { reason: breach.reason, failures: breach.failures, windowSeconds: this.config.monitor.failureWindowSeconds },
      });
    }
  }
}

/** The recorded failures as the decisions take them: tenant by tenant in lock order, each tenant's in the statement's order. */
function byTenant(recorded: RecordedFailure[]): TenantFailures[] {
  const tenants = new Map<string, TenantFailures>();
  for (const r of recorded) {
    let tenant = tenants.get(r.tenantId);
    if (!tenant) {
      tenant = {
        tenantId: r.tenantId,
        situation: {
          credentialId: r.credentialId,
          state: r.state,
          reason: r.reason,
          incidentId: r.incidentId,
          alertedIncidentId: r.alertedIncidentId,
          connectionStatus: r.connectionStatus,
          activeCredentialId: r.activeCredentialId,
          recentlyValidated: r.recentlyValidated,
          openProviderIncidentId: r.openProviderIncidentId,
        },
        failures: [],
        share: { before: { failing: r.failingBefore, unreachable: r.unreachableBefore }, after: { failing: r.failingAfter, unreachable: r.unreachableAfter } },
      };
      tenants.set(r.tenantId, tenant);
    }
    tenant.failures.push({ eventId: r.eventId, reportedCredentialId: r.reportedCredentialId, window: { failures: r.failures, forbidden: r.forbidden } });
  }
  return [...tenants.values()].sort((a, b) => compareTenantIds(a.tenantId, b.tenantId));
}
