import { randomUUID } from 'node:crypto';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { createEvent } from '@keyward/contracts';
import { CollectedEffects } from '@keyward/messaging';
import { inTransactionStartedWithEach } from '@keyward/persistence';
import { KeywardLogger, PeriodicTask } from '@keyward/observability';
import { ConnectionHealthRepository, DueProbe } from './connection-health.repository';
import { probeReason } from './health-decisions';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR_TIMINGS, MonitorTimings } from './monitor-options';
import { MONITOR } from './monitor-identity';
import { ProviderIncidentService } from './provider-incident.service';

/**
 * How far back a partial repair round looks before the previous round began: longer than any of
 * rotation's transactions takes to commit after stamping `updated_at`, and than the clock skew
 * between its replicas and the monitor's.
 */
const REPAIR_OVERLAP_MS = 10 * 60_000;

/**
 * Revalidates every active connection once per probe interval, each at its own point in the
 * interval (so load is even), and asks again for degraded connections whose last answer was
 * "Pleo unreachable" or never came. Replicas coordinate in Postgres: one claims at a time
 * (advisory lock), due rows are taken with FOR UPDATE SKIP LOCKED, and the probes of the last
 * minute, across replicas, are counted against the configured share of Pleo's rate limit.
 */
@Injectable()
export class ProbeScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly task: PeriodicTask;
  private lastReconcile = 0;
  private lastFullRepair = 0;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ConnectionHealthRepository) private readonly health: ConnectionHealthRepository,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(MONITOR_TIMINGS) private readonly timings: MonitorTimings,
    @Inject(ProviderIncidentService) private readonly provider: ProviderIncidentService,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {
    this.task = new PeriodicTask({
      round: async () => void (await this.tick()),
      intervalMs: timings.schedulerTickMs,
      onFailure: (err, backoffMs) => this.logger.warn('Probe scheduler round failed; retrying', { err, backoffMs }),
      backoff: { initialMs: timings.schedulerTickMs, maxMs: 30_000 },
    });
  }

  /** Probes per minute, all replicas together. */
  get probesPerMinute(): number {
    const { probeShareOfRateLimit, pleoRateLimitPerMinute } = this.config.monitor;
    return Math.max(1, Math.floor(probeShareOfRateLimit * pleoRateLimitPerMinute));
  }

  onApplicationBootstrap(): void {
    this.task.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /**
   * One scheduler round; returns how many probes were published. `at` is the clock seam: the
   * periodic task leaves it out and Postgres' `now()` decides what is due (one clock for every
   * replica); `npm run bench:probes` passes simulated instants.
   */
  async tick(at?: Date): Promise<number> {
    const now = at?.getTime() ?? Date.now();
    if (now - this.lastReconcile >= this.timings.reconcileEveryMs) {
      const full = now - this.lastFullRepair >= this.timings.fullRepairEveryMs;
      await this.reconcile(full ? undefined : new Date(this.lastReconcile - REPAIR_OVERLAP_MS));
      await this.health.pruneFailures(this.dataSource.manager, this.config.monitor.authFailureRetentionDays);
      this.lastReconcile = now;
      if (full) this.lastFullRepair = now;
    }
    const claimed = await this.claimDueProbes(at);
    await this.provider.review();
    return claimed;
  }

  /**
   * Publishes `key.revalidate` for due connections within the rate budget. Each tick takes at most
   * its share of the per-minute budget, so probes flow evenly instead of in bursts.
   */
  async claimDueProbes(at?: Date): Promise<number> {
    const perTick = Math.max(1, Math.ceil((this.probesPerMinute * this.timings.schedulerTickMs) / 60_000));
    // The lock and the minute's count travel with the start; nothing to claim rolls back (ADR 0055).
    const outcome = await inTransactionStartedWithEach<DueProbe[]>(this.dataSource, this.health.probeClaimStart(at), async (tx, [[lock], [minute]]) => {
      if (!(lock as { locked: boolean }).locked) return undefined; // another replica is claiming right now
      const budget = Math.min(perTick, this.probesPerMinute - (minute as { recent: number }).recent);
      if (budget <= 0) return undefined;
      const due = await this.health.claimDueProbes(tx, budget, at);
      if (due.length === 0) return undefined;
      const effects = new CollectedEffects();
      effects.publish(
        ...due.map((d) =>
          createEvent('key.revalidate', { tenantId: d.tenantId, correlationId: `probe-${randomUUID()}`, producer: MONITOR.producer }, { credentialId: d.credentialId, reason: probeReason(d.state) }),
        ),
      );
      return { result: due, atCommit: CollectedEffects.writeUntilCommit([effects]) };
    });
    const claimed = outcome?.result ?? [];
    for (const probe of claimed) this.metrics.probes.inc({ reason: probeReason(probe.state) });
    return claimed.length;
  }

  /**
   * Repairs what a lost or not-yet-seen activation would leave behind: an active connection with
   * no health row, or one for an old credential, gets a fresh row so it is monitored and probed.
   * Between full rounds (`fullRepairEveryMs`) only connections changed since `changedSince` are
   * looked at, so the minute's round costs what changed, not the number of tenants (ADR 0034).
   */
  async reconcile(changedSince?: Date): Promise<number> {
    const rows = await this.health.startMonitoringActive(this.dataSource.manager, { changedSince });
    if (rows.length > 0) this.logger.info('Started monitoring active connections that had no current health row', { connections: rows.length });
    return rows.length;
  }
}
