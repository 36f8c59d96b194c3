import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { Locks, LOCKS } from '@keyward/persistence';
import type { WebhookAttemptResult } from './alert-webhook';

export interface PendingAlert {
  id: string;
  event_type: string;
  tenant_id: string;
  payload: unknown;
  /** Attempts since the latest redelivery request (all attempts when there was none). */
  attempts: number;
  /** Every attempt ever: numbers the next one. */
  total: number;
}

export interface DeliveryPolicy {
  alertTypes: string[];
  horizonHours: number;
  maxAttempts: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
}

/**
 * The only writer of `alert_deliveries` (owner: monitor): one row per webhook attempt. Alerts are
 * read from the outbox, and redelivery requests from intake's `alert_redeliveries`: attempts count
 * from the latest request, so a request gives the alert a fresh budget, even when it was delivered.
 */
@Injectable()
export class AlertDeliveryRepository {
  /** Alerts without a delivered attempt whose backoff has passed, oldest first. */
  async due(tx: EntityManager, policy: DeliveryPolicy, limit: number): Promise<PendingAlert[]> {
    return await tx.query<PendingAlert[]>(
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
      [policy.alertTypes, policy.horizonHours, policy.maxAttempts, policy.baseBackoffMs, policy.maxBackoffMs, limit],
    );
  }

  /** The alert's lock until the transaction ends; false when another replica holds it. */
  async lock(tx: EntityManager, alertId: string): Promise<boolean> {
    return Locks.tryHold(tx, LOCKS.alertDelivery(alertId));
  }

  async attempts(tx: EntityManager, alertId: string): Promise<{ attempts: number; total: number; delivered: boolean }> {
    const [state] = await tx.query<{ attempts: number; total: number; delivered: boolean }[]>(
      `SELECT count(d.id) FILTER (WHERE r.at IS NULL OR d.created_at > r.at)::int AS attempts, count(d.id)::int AS total,
              coalesce(bool_or(d.status = 'delivered') FILTER (WHERE r.at IS NULL OR d.created_at > r.at), false) AS delivered
         FROM (SELECT max(requested_at) AS at FROM alert_redeliveries WHERE alert_event_id = $1) r
         LEFT JOIN alert_deliveries d ON d.alert_event_id = $1`,
      [alertId],
    );
    return state;
  }

  async recordAttempt(tx: EntityManager, alert: PendingAlert, attempt: number, result: WebhookAttemptResult): Promise<void> {
    await tx.query(`INSERT INTO alert_deliveries (alert_event_id, tenant_id, kind, attempt, status, response_status, error) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      alert.id,
      alert.tenant_id,
      alert.event_type,
      attempt,
      result.delivered ? 'delivered' : 'failed',
      result.responseStatus,
      result.error,
    ]);
  }
}
