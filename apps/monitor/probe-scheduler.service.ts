import { randomUUID } from 'node:crypto';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { createEvent } from '@keyward/contracts';
import { Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { ConnectionHealthRepository as Health } from './connection-health.repository';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR_PRODUCER, MONITOR_TIMINGS, MonitorTimings } from './monitor-options';
import { ProviderIncidentService } from './provider-incident.service';

interface DueProbe {
  tenant_id: string;
  credential_id: string;
  state: string;
}

/**
 * Revalidates every active connection once per probe interval, each at its own point in the
 * interval (so load is even), and asks again for degraded connections whose last answer was
 * "Pleo unreachable" or never came. Replicas coordinate in Postgres: one claims at a time
 * (advisory lock), due rows are taken with FOR UPDATE SKIP LOCKED, and the probes of the last
 * minute, across replicas, are counted against the configured share of Pleo's rate limit.
 */
@Injectable()
export class ProbeScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private lastReconcile = 0;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(MONITOR_TIMINGS) private readonly timings: MonitorTimings,
    @Inject(ProviderIncidentService) private readonly provider: ProviderIncidentService,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  /** Probes per minute, all replicas together. */
  get probesPerMinute(): number {
    const { probeShareOfRateLimit, pleoRateLimitPerMinute } = this.config.monitor;
    return Math.max(1, Math.floor(probeShareOfRateLimit * pleoRateLimitPerMinute));
  }

  onApplicationBootstrap(): void {
    this.running = true;
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** One scheduler round; returns how many probes were published. */
  async tick(): Promise<number> {
    if (Date.now() - this.lastReconcile >= this.timings.reconcileEveryMs) {
      await this.reconcile();
      await Health.pruneFailures(this.dataSource.manager, this.config.monitor.authFailureRetentionDays);
      this.lastReconcile = Date.now();
    }
    const claimed = await this.claimDueProbes();
    await this.provider.review();
    return claimed;
  }

  /**
   * Publishes `key.revalidate` for due connections within the rate budget. Each tick takes at most
   * its share of the per-minute budget, so probes flow evenly instead of in bursts.
   */
  async claimDueProbes(): Promise<number> {
    const perTick = Math.max(1, Math.ceil((this.probesPerMinute * this.timings.schedulerTickMs) / 60_000));
    const claimed = await this.dataSource.transaction(async (tx) => {
      const [{ locked }] = (await tx.query(`SELECT pg_try_advisory_xact_lock(hashtextextended('keyward:monitor:probe-claim', 0)) AS locked`)) as {
        locked: boolean;
      }[];
      if (!locked) return [] as DueProbe[]; // another replica is claiming right now
      const [{ recent }] = (await tx.query(
        `SELECT count(*)::int AS recent FROM connection_health WHERE last_probe_at > now() - interval '1 minute'`,
      )) as { recent: number }[];
      const budget = Math.min(perTick, this.probesPerMinute - recent);
      if (budget <= 0) return [] as DueProbe[];
      const due = (await tx.query(
        `SELECT h.tenant_id, h.credential_id, h.state
         FROM connection_health h
         JOIN connections c ON c.tenant_id = h.tenant_id AND c.active_credential_id = h.credential_id AND c.status = 'active'
         WHERE h.next_probe_at <= now()
         ORDER BY h.next_probe_at
         LIMIT $1
         FOR UPDATE OF h SKIP LOCKED`,
        [budget],
      )) as DueProbe[];
      if (due.length === 0) return due;
      // Keep each connection's place in the interval; one far behind starts a new cycle from now.
      // A revalidation in flight is asked again if no answer comes within the timeout.
      await tx.query(
        `UPDATE connection_health SET last_probe_at = now(), revalidate_requested_at = now(), updated_at = now(),
           next_probe_at = CASE
             WHEN state <> 'healthy' OR reason IN ('pleo_unreachable', 'pleo_rate_limited') THEN now() + make_interval(secs => $3)
             WHEN next_probe_at + make_interval(secs => $2) > now() THEN next_probe_at + make_interval(secs => $2)
             ELSE now() + make_interval(secs => $2) END
         WHERE tenant_id = ANY($1)`,
        [due.map((d) => d.tenant_id), this.config.monitor.probeIntervalHours * 3600, this.timings.revalidationTimeoutMs / 1000],
      );
      await Outbox.stage(
        tx,
        ...due.map((d) =>
          createEvent(
            'key.revalidate',
            { tenantId: d.tenant_id, correlationId: `probe-${randomUUID()}`, producer: MONITOR_PRODUCER },
            { credentialId: d.credential_id, reason: d.state === 'degraded' ? 'auth_failures' : 'probe' },
          ),
        ),
      );
      return due;
    });
    for (const probe of claimed) this.metrics.probes.inc({ reason: probe.state === 'degraded' ? 'auth_failures' : 'probe' });
    return claimed.length;
  }

  /**
   * Repairs what a lost or not-yet-seen activation would leave behind: an active connection with
   * no health row, or one for an old credential, gets a fresh row so it is monitored and probed.
   */
  async reconcile(): Promise<number> {
    const rows = await Health.startMonitoringActive(this.dataSource.manager, this.config.monitor.probeIntervalHours * 3600);
    if (rows.length > 0) this.logger.info('Started monitoring active connections that had no current health row', { connections: rows.length });
    return rows.length;
  }

  private async run(): Promise<void> {
    let backoff = this.timings.schedulerTickMs;
    while (this.running) {
      try {
        await this.tick();
        backoff = this.timings.schedulerTickMs;
        await this.sleep(this.timings.schedulerTickMs);
      } catch (error) {
        this.logger.warn('Probe scheduler round failed; retrying', { err: error, backoffMs: backoff });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref?.();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
