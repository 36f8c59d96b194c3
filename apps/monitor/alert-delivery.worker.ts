import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { KeywardLogger } from '@keyward/observability';
import { postWebhook, signingSecretsAt, standardWebhookHeaders } from './alert-webhook';
import { ALERT_EVENT_TYPES, MonitorMetrics } from './monitor-metrics';
import { MONITOR_TIMINGS, MonitorTimings } from './monitor-options';

interface PendingAlert {
  id: string;
  event_type: string;
  tenant_id: string;
  payload: unknown;
  /** Attempts since the latest redelivery request (all attempts when there was none). */
  attempts: number;
  /** Every attempt ever: numbers the next one. */
  total: number;
}

/**
 * Sends alerts to the configured webhook after they committed. The alert event itself sits in the
 * outbox; this worker looks there for alerts without a `delivered` row in `alert_deliveries`, so a
 * crash between commit and delivery never loses one. Each attempt is a row; retries back off
 * exponentially up to a bounded number of attempts. A per-alert advisory lock keeps replicas from
 * sending the same attempt twice. The body is the alert event itself: ids and last4, no key.
 */
@Injectable()
export class AlertDeliveryWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  private running = false;
  private stopping = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private warnedUnsigned = false;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(MONITOR_TIMINGS) private readonly timings: MonitorTimings,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.monitor.alertWebhookUrl) return;
    this.running = true;
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  /** Delivers what is due now; returns the number of attempts made. */
  async deliverDue(limit = 20): Promise<number> {
    const url = this.config.monitor.alertWebhookUrl;
    if (!url) return 0;
    const { webhookBaseBackoffMs, webhookMaxBackoffMs, webhookMaxAttempts, webhookHorizonHours } = this.timings;
    // Attempts count from the latest redelivery request (intake's alert_redeliveries), if any:
    // a request gives the alert a fresh budget, even when it was delivered before.
    const due = (await this.dataSource.query(
      `SELECT o.id, o.event_type, o.tenant_id, o.payload, coalesce(d.attempts, 0)::int AS attempts, coalesce(d.total, 0)::int AS total
       FROM outbox o
       LEFT JOIN LATERAL (SELECT max(requested_at) AS at FROM alert_redeliveries WHERE alert_event_id = o.id) r ON true
       LEFT JOIN LATERAL (
         SELECT count(*) FILTER (WHERE r.at IS NULL OR created_at > r.at) AS attempts, count(*) AS total,
                max(created_at) FILTER (WHERE r.at IS NULL OR created_at > r.at) AS last_at,
                bool_or(status = 'delivered') FILTER (WHERE r.at IS NULL OR created_at > r.at) AS delivered
         FROM alert_deliveries WHERE alert_event_id = o.id) d ON true
       WHERE o.event_type = ANY($1) AND (o.created_at > now() - make_interval(hours => $2) OR r.at > now() - make_interval(hours => $2))
         AND NOT coalesce(d.delivered, false) AND coalesce(d.attempts, 0) < $3
         AND (d.last_at IS NULL OR d.last_at + make_interval(secs => least($5, $4 * power(2, d.attempts - 1)) / 1000.0) <= now())
       ORDER BY o.seq LIMIT $6`,
      [ALERT_EVENT_TYPES, webhookHorizonHours, webhookMaxAttempts, webhookBaseBackoffMs, webhookMaxBackoffMs, limit],
    )) as PendingAlert[];
    let attempts = 0;
    for (const alert of due) {
      if (this.stopping) break;
      if (await this.attempt(url, alert)) attempts++;
    }
    return attempts;
  }

  /** One attempt under the alert's lock, re-checked inside it; false when another replica has it. */
  private async attempt(url: string, alert: PendingAlert): Promise<boolean> {
    return this.dataSource.transaction(async (tx) => {
      const [{ locked }] = (await tx.query(`SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked`, [`alert-delivery:${alert.id}`])) as {
        locked: boolean;
      }[];
      if (!locked) return false;
      const [state] = (await tx.query(
        `SELECT count(d.id) FILTER (WHERE r.at IS NULL OR d.created_at > r.at)::int AS attempts, count(d.id)::int AS total,
                coalesce(bool_or(d.status = 'delivered') FILTER (WHERE r.at IS NULL OR d.created_at > r.at), false) AS delivered
           FROM (SELECT max(requested_at) AS at FROM alert_redeliveries WHERE alert_event_id = $1) r
           LEFT JOIN alert_deliveries d ON d.alert_event_id = $1`,
        [alert.id],
      )) as { attempts: number; total: number; delivered: boolean }[];
      if (state.delivered || state.attempts !== alert.attempts || state.total !== alert.total) return false; // someone else got there first
      const attempt = state.total + 1;
      const body = JSON.stringify(alert.payload);
      const secrets = this.config.monitor.alertWebhookSecrets;
      if (signingSecretsAt(secrets).length === 0 && !this.warnedUnsigned) {
        this.warnedUnsigned = true;
        this.logger.warn('KEYWARD_ALERT_WEBHOOK_SECRET is not set: alert webhooks are sent unsigned (refused in production)');
      }
      const result = await postWebhook(
        url,
        body,
        {
          ...standardWebhookHeaders(secrets, alert.id, body),
          'x-keyward-event-id': alert.id,
          'x-keyward-event-type': alert.event_type,
          'x-keyward-delivery-attempt': String(attempt),
        },
        this.timings.webhookTimeoutMs,
      );
      await tx.query(
        `INSERT INTO alert_deliveries (alert_event_id, tenant_id, kind, attempt, status, response_status, error) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [alert.id, alert.tenant_id, alert.event_type, attempt, result.delivered ? 'delivered' : 'failed', result.responseStatus, result.error],
      );
      this.metrics.webhookAttempts.inc({ outcome: result.delivered ? 'delivered' : 'failed' });
      if (!result.delivered) {
        const givingUp = state.attempts + 1 >= this.timings.webhookMaxAttempts;
        this.logger[givingUp ? 'error' : 'warn'](
          givingUp ? 'Alert webhook failed for the last time; giving up (the alert event was published)' : 'Alert webhook attempt failed; will retry',
          { alertEventId: alert.id, kind: alert.event_type, attempt, error: result.error },
        );
      }
      return true;
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.deliverDue();
      } catch (error) {
        this.logger.warn('Alert delivery round failed; retrying', { err: error });
      }
      await this.sleep(this.timings.deliveryPollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
