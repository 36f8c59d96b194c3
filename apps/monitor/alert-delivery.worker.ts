import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { KeywardLogger, PeriodicTask } from '@keyward/observability';
import { AlertDeliveryRepository, PendingAlert } from './alert-delivery.repository';
import { postWebhook, signingSecretsAt, standardWebhookHeaders } from './alert-webhook';
import { ALERT_EVENT_TYPES, MonitorMetrics } from './monitor-metrics';
import { MONITOR_TIMINGS, MonitorTimings } from './monitor-options';

/**
 * Sends alerts to the configured webhook after they committed. The alert event itself sits in the
 * outbox; this worker looks there for alerts without a `delivered` row in `alert_deliveries`, so a
 * crash between commit and delivery never loses one. Each attempt is a row; retries back off
 * exponentially up to a bounded number of attempts. A per-alert advisory lock keeps replicas from
 * sending the same attempt twice. The body is the alert event itself: ids and last4, no key.
 */
@Injectable()
export class AlertDeliveryWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  private stopping = false;
  private readonly task: PeriodicTask;
  private warnedUnsigned = false;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(AlertDeliveryRepository) private readonly deliveries: AlertDeliveryRepository,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(MONITOR_TIMINGS) private readonly timings: MonitorTimings,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {
    this.task = new PeriodicTask({
      round: async () => void (await this.deliverDue()),
      intervalMs: timings.deliveryPollMs,
      onFailure: (err) => this.logger.warn('Alert delivery round failed; retrying', { err }),
      backoff: { initialMs: timings.deliveryPollMs, maxMs: timings.deliveryPollMs },
    });
  }

  onApplicationBootstrap(): void {
    if (!this.config.monitor.alertWebhookUrl) return;
    this.task.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.task.stop();
  }

  /** Delivers what is due now; returns the number of attempts made. */
  async deliverDue(limit = 20): Promise<number> {
    const url = this.config.monitor.alertWebhookUrl;
    if (!url) return 0;
    const { webhookBaseBackoffMs, webhookMaxBackoffMs, webhookMaxAttempts, webhookHorizonHours } = this.timings;
    // Attempts count from the latest redelivery request (intake's alert_redeliveries), if any:
    // a request gives the alert a fresh budget, even when it was delivered before.
    const policy = {
      alertTypes: ALERT_EVENT_TYPES,
      horizonHours: webhookHorizonHours,
      maxAttempts: webhookMaxAttempts,
      baseBackoffMs: webhookBaseBackoffMs,
      maxBackoffMs: webhookMaxBackoffMs,
    };
    const due = await this.deliveries.due(this.dataSource.manager, policy, limit);
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
      if (!(await this.deliveries.lock(tx, alert.id))) return false;
      const state = await this.deliveries.attempts(tx, alert.id);
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
      await this.deliveries.recordAttempt(tx, alert, attempt, result);
      this.metrics.webhookAttempts.inc({ outcome: result.delivered ? 'delivered' : 'failed' });
      if (!result.delivered) {
        const givingUp = state.attempts + 1 >= this.timings.webhookMaxAttempts;
        this.logger[givingUp ? 'error' : 'warn'](givingUp ? 'Alert webhook failed for the last time; giving up (the alert event was published)' : 'Alert webhook attempt failed; will retry', {
          alertEventId: alert.id,
          kind: alert.event_type,
          attempt,
          error: result.error,
        });
      }
      return true;
    });
  }
}
