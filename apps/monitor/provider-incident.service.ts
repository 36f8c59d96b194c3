import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { createEvent, PROVIDER_TENANT_ID } from '@keyward/contracts';
import { CollectedEffects, InboxEffects } from '@keyward/messaging';
import { inTransactionStartedWithEach } from '@keyward/persistence';
import { KeywardLogger } from '@keyward/observability';
import { ConnectionHealthRepository } from './connection-health.repository';
import { decideProviderIncident, HealthRules, healthRules, ProviderIncidentDecision, ProviderSignal, providerFailingThreshold } from './health-decisions';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR } from './monitor-identity';
import { OpenProviderIncident, ProviderIncidentRepository } from './provider-incident.repository';

type Reviewed = 'opened' | 'closed' | 'grown';

/**
 * Provider events are about Pleo, not one tenant; the envelope still needs a tenant id, so they
 * carry this fixed one (it can never be a real tenant's: tenants are created by the integration).
 */
export { PROVIDER_TENANT_ID };

/**
 * Opens and closes Pleo-side incidents as `decideProviderIncident` says: one `provider.degraded`
 * when an incident opens, one `provider.recovered` when it closes, and then every tenant that
 * failed during it is revalidated on its own.
 */
@Injectable()
export class ProviderIncidentService {
  private readonly rules: HealthRules;

  constructor(
    @Inject(KEYWARD_CONFIG) config: KeywardConfig,
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ProviderIncidentRepository) private readonly incidents: ProviderIncidentRepository,
    @Inject(ConnectionHealthRepository) private readonly health: ConnectionHealthRepository,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
  ) {
    this.rules = healthRules(config);
  }

  /**
   * Opens an incident when the signal says so and none is open; returns the open incident's id
   * (new or existing) or undefined. The unique index on open incidents makes replicas agree.
   * `bound`: the signal's upper bound when the caller read it already (in its transaction's first round trip).
   */
  async openIfWidespread(tx: EntityManager, effects: InboxEffects, cause: { correlationId: string }, bound?: ProviderSignal): Promise<{ id: string; opened: boolean } | undefined> {
    const decideOn = (signal: ProviderSignal) => ({ decision: decideProviderIncident(signal, null, this.rules), signal });
    const { decision, signal } = await this.decideOnSignal(tx, decideOn, (d) => d.decision.kind === 'open', bound);
    if (decision.kind !== 'open') return undefined;
    return this.open(tx, effects, cause, decision, signal);
  }

  /**
   * A decision that depends on the provider signal, with no incident open, only through where an
   * incident opens (`opens`: whether it does), made on the signal's cheaper upper bound first
   * (ADR 0060). More tenants failing or unreachable can only open an incident sooner, so a decision
   * that opens none on the bound opens none on the signal either, and is the same decision; only
   * one that opens an incident reads the signal and decides again. `bound`: the upper bound when
   * the caller read it already.
   */
  async decideOnSignal<D>(tx: EntityManager, decide: (signal: ProviderSignal) => D, opens: (decision: D) => boolean, bound?: ProviderSignal): Promise<D> {
    const bounded = decide(bound ?? (await this.incidents.signalBound(tx)));
    return opens(bounded) ? decide(await this.incidents.signal(tx)) : bounded;
  }

  /** Opens the incident `decideProviderIncident` called for on `signal`: the open incident's id (new, or another replica's). */
  async open(
    tx: EntityManager,
    effects: InboxEffects,
    cause: { correlationId: string },
    decision: Extract<ProviderIncidentDecision, { kind: 'open' }>,
    signal: ProviderSignal,
  ): Promise<{ id: string; opened: boolean } | undefined> {
    const id = randomUUID();
    const openedAt = await this.incidents.open(tx, id, decision.reason, decision.affectedTenants);
    if (!openedAt) {
      const open = await this.incidents.findOpen(tx);
      return open ? { id: open.id, opened: false } : undefined;
    }
    effects.publish(
      createEvent(
        'provider.degraded',
        { tenantId: PROVIDER_TENANT_ID, correlationId: `provider-incident-${id}`, producer: MONITOR.producer },
        { reason: decision.reason, since: openedAt.toISOString(), affectedTenants: decision.affectedTenants },
      ),
    );
    this.logger.warn('Provider incident opened: failures across many tenants point at Pleo, not at their keys', {
      incidentId: id,
      reason: decision.reason,
      ...signal,
      threshold: providerFailingThreshold(signal.active, this.rules),
      causedBy: cause.correlationId,
    });
    return { id, opened: true };
  }

  /**
   * Scheduler tick: opens on unreachable results, keeps the peak count, closes when calm. The open
   * incident and the signal's upper bound travel with the transaction's start (one round trip):
   * with no incident open that decides, unless it would open one (ADR 0060); an open incident's
   * growth and closing are decided on the signal itself, read then. A review that changes nothing
   * rolls back, one that does commits with its events (ADR 0055).
   */
  async review(): Promise<void> {
    const statements = [this.incidents.findOpenStatement(), this.incidents.signalBoundStatement()];
    const outcome = await inTransactionStartedWithEach<Reviewed>(this.dataSource, statements, async (tx, [open, bound]) => {
      const effects = new CollectedEffects();
      const reviewed = await this.reviewIn(tx, effects, open[0] as OpenProviderIncident | undefined, bound[0] as ProviderSignal);
      return reviewed ? { result: reviewed, atCommit: CollectedEffects.writeUntilCommit([effects]) } : undefined;
    });
    if (outcome && outcome.result !== 'grown') this.metrics.providerIncidents.inc({ event: outcome.result });
  }

  /** What a review wrote: nothing (undefined), an incident opened or closed, or the open one's peak raised. */
  private async reviewIn(tx: EntityManager, effects: InboxEffects, open: OpenProviderIncident | undefined, bound: ProviderSignal): Promise<Reviewed | undefined> {
    if (!open) return (await this.openIfWidespread(tx, effects, { correlationId: 'provider-review' }, bound))?.opened ? 'opened' : undefined;
    const signal = await this.incidents.signal(tx);
    const decision = decideProviderIncident(signal, open, this.rules);
    if (decision.kind === 'grow') {
      await this.incidents.grow(tx, open.id, decision.affectedTenants);
      return 'grown';
    }
    if (decision.kind !== 'close') return undefined;
    const closedAt = await this.incidents.close(tx, open.id);
    if (!closedAt) return undefined; // another replica closed it
    // Per-tenant revalidation decides now that Pleo answers (rate limited by the scheduler).
    await this.health.probeSoonAfterIncident(tx, open.openedAt);
    effects.publish(
      createEvent(
        'provider.recovered',
        { tenantId: PROVIDER_TENANT_ID, correlationId: `provider-incident-${open.id}`, producer: MONITOR.producer },
        { reason: open.reason, since: closedAt.toISOString(), affectedTenants: open.affectedTenants },
      ),
    );
    this.logger.info('Provider incident closed; tenants that failed during it will be revalidated one by one', { incidentId: open.id, ...signal });
    return 'closed';
  }
}
