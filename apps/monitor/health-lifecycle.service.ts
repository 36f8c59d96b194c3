import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { causedBy, createEvent, EventEnvelope } from '@keyward/contracts';
import { Inbox, InboxEffects } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { ConnectionHealthRepository } from './connection-health.repository';
import { decideCompromise, isActiveKey, keyReplacementRecovers, stillDisabled } from './health-decisions';
import { LifecycleFactsRepository } from './lifecycle-facts.repository';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR } from './monitor-identity';
import { reconnectionAlert } from './reconnection-alert';

/**
 * The health row follows the credential lifecycle that rotation and intake drive: a new active key
 * is monitored afresh, a retired key is no longer probed, a compromised key raises its reconnection
 * alert, and an integrator's check asks the validator about the active key. Each event is handled
 * once (inbox) and decided by `health-decisions.ts` from the owners' tables, not the message.
 */
@Injectable()
export class HealthLifecycleService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ConnectionHealthRepository) private readonly health: ConnectionHealthRepository,
    @Inject(LifecycleFactsRepository) private readonly facts: LifecycleFactsRepository,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  /** A new active key: a fresh healthy row, first probe somewhere in the interval; any incident closes. */
  async onActivated(event: EventEnvelope<'key.activated'>): Promise<void> {
    await Inbox.runOnce(this.dataSource, MONITOR.consumer, event, async (tx, effects) => {
      if (isActiveKey(await this.facts.connection(tx, event.tenantId), event.data.credentialId)) await this.adoptActiveKey(tx, effects, event);
    });
  }

  /**
   * Starts a fresh row for the tenant's active key when its row is missing or describes an old key
   * (an activation not seen yet). False when the tenant has no active key to monitor.
   */
  async startMonitoring(tx: EntityManager, effects: InboxEffects, cause: EventEnvelope): Promise<boolean> {
    const connection = await this.facts.connection(tx, cause.tenantId);
    if (connection?.status !== 'active' || !connection.activeCredentialId) return false;
    await this.adoptActiveKey(tx, effects, cause);
    return true;
  }

  /** An invalidated credential is not probed any more. */
  async onInvalidated(event: EventEnvelope<'key.invalidated'>): Promise<void> {
    await Inbox.runOnce(this.dataSource, MONITOR.consumer, event, (tx) => this.health.stopProbing(tx, event.tenantId, event.data.credentialId));
  }

  async onUninstalled(event: EventEnvelope<'connection.uninstalled'>): Promise<void> {
    await Inbox.runOnce(this.dataSource, MONITOR.consumer, event, async (tx) => {
      // Reinstalled meanwhile: keep probing the new key.
      if ((await this.facts.connection(tx, event.tenantId))?.status === 'uninstalled') await this.health.stopProbing(tx, event.tenantId);
    });
  }

  /**
   * An integrator's "test now" (intake's connection.check_requested): the monitor, sole producer
   * of key.revalidate, asks the validator for the active key with the check's id; the answer
   * comes back as key.revalidated like any probe's.
   */
  async onCheckRequested(event: EventEnvelope<'connection.check_requested'>): Promise<'requested' | 'stale' | 'duplicate'> {
    const { credentialId } = event.data;
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR.consumer, event, async (tx, effects): Promise<'requested' | 'stale'> => {
      if (!isActiveKey(await this.facts.connection(tx, event.tenantId), credentialId)) return 'stale';
      effects.publish(createEvent('key.revalidate', causedBy(event, MONITOR.producer), { credentialId, reason: 'manual', checkId: event.id }));
      return 'requested';
    });
    const decision = outcome.duplicate ? 'duplicate' : outcome.result;
    if (decision === 'requested') this.metrics.probes.inc({ reason: 'manual' });
    else if (decision === 'stale') this.logger.info('Connection check for a key that is no longer active; nothing asked', { tenantId: event.tenantId });
    return decision;
  }

  /** A compromised key: one reconnection alert per compromised credential (`decideCompromise`). */
  async onDisabled(event: EventEnvelope<'connection.disabled'>): Promise<'alerted' | 'duplicate' | 'stale'> {
    const { tenantId } = event;
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR.consumer, event, async (tx, effects): Promise<'alerted' | 'duplicate' | 'stale'> => {
      const connection = await this.facts.connection(tx, tenantId);
      if (!stillDisabled(connection)) return 'stale'; // decided before the row is locked
      const health = await this.health.lock(tx, tenantId);
      const decision = decideCompromise({ connection, health, lastCompromisedCredentialId: await this.facts.lastCompromisedCredential(tx, tenantId) });
      if (decision.kind !== 'alert') return decision.kind;
      const { credentialId } = decision;
      const since = await this.health.recordCompromise(tx, tenantId, credentialId, randomUUID(), health !== undefined);
      const last4 = credentialId ? await this.facts.last4(tx, credentialId) : '????';
      const alert = reconnectionAlert({ reason: 'key_compromised', companyId: connection.companyId, last4, since });
      effects.publish(createEvent('alert.reconnection_required', causedBy(event, MONITOR.producer), alert));
      effects.audit({
        tenantId,
        actor: MONITOR.actor,
        action: 'alert.reconnection_required',
        credentialId,
        last4,
        correlationId: event.correlationId,
        details: { reason: 'key_compromised' },
      });
      return 'alerted';
    });
    const decision = outcome.duplicate ? 'duplicate' : outcome.result;
    if (decision === 'alerted') this.metrics.alerts.inc({ kind: 'reconnection_required', reason: 'key_compromised' });
    return decision;
  }

  private async adoptActiveKey(tx: EntityManager, effects: InboxEffects, cause: EventEnvelope): Promise<void> {
    const { started, replacedState } = await this.health.startMonitoringTenant(tx, cause.tenantId);
    if (!started || !keyReplacementRecovers(replacedState)) return;
    // The customer replaced the failing key: whoever showed "degraded" can stop.
    effects.publish(createEvent('connection.recovered', causedBy(cause, MONITOR.producer), { reason: 'key_replaced', since: new Date().toISOString() }));
    this.metrics.transitions.inc({ state: 'healthy', reason: 'key_replaced' });
  }
}
