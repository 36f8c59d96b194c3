import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { createEvent, PROVIDER_TENANT_ID } from '@keyward/contracts';
import { Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { ConnectionHealthRepository } from './connection-health.repository';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR_PRODUCER } from './monitor-options';

/**
 * Provider events are about Pleo, not one tenant; the envelope still needs a tenant id, so they
 * carry this fixed one (it can never be a real tenant's: tenants are created by the integration).
 */
export { PROVIDER_TENANT_ID };

export interface ProviderSignal {
  /** Active tenants with a failure of their active credential in the window. */
  failing: number;
  /** Tenants whose last revalidation in the window found Pleo unreachable. */
  unreachable: number;
  active: number;
}

export type IncidentReason = 'auth_failures_across_tenants' | 'pleo_unreachable';

/**
 * Tells a Pleo-side incident from many customers' keys failing: when a configurable share of the
 * active tenants fail within the window (or revalidations find Pleo unreachable for several), one
 * incident is opened and one `provider.degraded` published; while it is open, failure counts move
 * nobody. It closes with hysteresis (half the opening threshold) so it does not flap.
 */
@Injectable()
export class ProviderIncidentService {
  constructor(
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
  ) {}

  async signal(tx: EntityManager): Promise<ProviderSignal> {
    const [row] = (await tx.query(
      `SELECT (count(*) FILTER (WHERE h.last_auth_failure_at > now() - make_interval(secs => $1)))::int AS failing,
              (count(*) FILTER (WHERE h.reason = 'pleo_unreachable' AND h.updated_at > now() - make_interval(secs => $1)))::int AS unreachable,
              (SELECT count(*) FROM connections WHERE status = 'active')::int AS active
       FROM connection_health h
       JOIN connections c ON c.tenant_id = h.tenant_id AND c.status = 'active' AND c.active_credential_id = h.credential_id`,
      [this.config.monitor.failureWindowSeconds],
    )) as ProviderSignal[];
    return row;
  }

  /** Tenants failing at once that mean Pleo, not the keys, is the problem. */
  failingThreshold(active: number): number {
    const { providerIncidentShare, providerIncidentMinTenants } = this.config.monitor;
    return Math.max(providerIncidentMinTenants, Math.ceil(providerIncidentShare * active));
  }

  shouldOpen(signal: ProviderSignal): IncidentReason | undefined {
    if (signal.failing >= this.failingThreshold(signal.active)) return 'auth_failures_across_tenants';
    if (signal.unreachable >= this.config.monitor.providerIncidentMinTenants) return 'pleo_unreachable';
    return undefined;
  }

  shouldClose(signal: ProviderSignal): boolean {
    return (
      signal.failing < Math.ceil(this.failingThreshold(signal.active) / 2) &&
      signal.unreachable < Math.ceil(this.config.monitor.providerIncidentMinTenants / 2)
    );
  }

  /**
   * Opens an incident when the signal says so and none is open; returns the open incident's id
   * (new or existing) or undefined. The unique index on open incidents makes replicas agree.
   */
  async openIfWidespread(tx: EntityManager, cause: { correlationId: string }): Promise<{ id: string; opened: boolean } | undefined> {
    const signal = await this.signal(tx);
    const reason = this.shouldOpen(signal);
    if (!reason) return undefined;
    const affected = reason === 'pleo_unreachable' ? signal.unreachable : signal.failing;
    const id = randomUUID();
    const opened = (await tx.query(
      `INSERT INTO provider_incidents (id, reason, affected_tenants) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING opened_at`,
      [id, reason, affected],
    )) as { opened_at: Date }[];
    if (opened.length === 0) {
      const [open] = (await tx.query(`SELECT id FROM provider_incidents WHERE closed_at IS NULL`)) as { id: string }[];
      return open ? { id: open.id, opened: false } : undefined;
    }
    await Outbox.stage(
      tx,
      createEvent(
        'provider.degraded',
        { tenantId: PROVIDER_TENANT_ID, correlationId: `provider-incident-${id}`, producer: MONITOR_PRODUCER },
        { reason, since: opened[0].opened_at.toISOString(), affectedTenants: affected },
      ),
    );
    this.logger.warn('Provider incident opened: failures across many tenants point at Pleo, not at their keys', {
      incidentId: id,
      reason,
      ...signal,
      threshold: this.failingThreshold(signal.active),
      causedBy: cause.correlationId,
    });
    return { id, opened: true };
  }

  /** Scheduler tick: opens on unreachable results, keeps the peak count, closes when calm. */
  async review(): Promise<void> {
    const outcome = await this.dataSource.transaction(async (tx) => {
      const [open] = (await tx.query(`SELECT id, reason, opened_at, affected_tenants FROM provider_incidents WHERE closed_at IS NULL`)) as {
        id: string;
        reason: string;
        opened_at: Date;
        affected_tenants: number;
      }[];
      if (!open) {
        const incident = await this.openIfWidespread(tx, { correlationId: 'provider-review' });
        return incident?.opened ? 'opened' : undefined;
      }
      const signal = await this.signal(tx);
      const current = Math.max(signal.failing, signal.unreachable);
      if (!this.shouldClose(signal)) {
        if (current > open.affected_tenants) {
          await tx.query(`UPDATE provider_incidents SET affected_tenants = $2 WHERE id = $1`, [open.id, current]);
        }
        return undefined;
      }
      const closed = (await tx.query(`UPDATE provider_incidents SET closed_at = now() WHERE id = $1 AND closed_at IS NULL RETURNING closed_at`, [
        open.id,
      ])) as unknown;
      const rows = ConnectionHealthRepository.rowsOf<{ closed_at: Date }>(closed);
      if (rows.length === 0) return undefined; // another replica closed it
      // Per-tenant revalidation decides now that Pleo answers: everyone who failed during the
      // incident is probed soon (rate limited by the scheduler). Rows a handler holds are skipped;
      // that handler judges them itself.
      await tx.query(
        `UPDATE connection_health SET next_probe_at = now(), updated_at = now()
         WHERE tenant_id IN (
           SELECT tenant_id FROM connection_health
           WHERE state = 'healthy' AND (last_auth_failure_at >= $1::timestamptz - make_interval(secs => $2) OR reason = 'pleo_unreachable')
           FOR UPDATE SKIP LOCKED)`,
        [open.opened_at, this.config.monitor.failureWindowSeconds],
      );
      await Outbox.stage(
        tx,
        createEvent(
          'provider.recovered',
          { tenantId: PROVIDER_TENANT_ID, correlationId: `provider-incident-${open.id}`, producer: MONITOR_PRODUCER },
          { reason: open.reason, since: rows[0].closed_at.toISOString(), affectedTenants: open.affected_tenants },
        ),
      );
      this.logger.info('Provider incident closed; tenants that failed during it will be revalidated one by one', {
        incidentId: open.id,
        ...signal,
      });
      return 'closed';
    });
    if (outcome) this.metrics.providerIncidents.inc({ event: outcome });
  }
}
