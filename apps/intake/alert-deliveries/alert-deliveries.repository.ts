import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

/**
 * Alert webhook deliveries, one row per alert from the monitor's attempts (`alert_deliveries`,
 * read here), and the operator's "send it again" (`alert_redeliveries`, intake's own table, which
 * the monitor's webhook worker acts on with a fresh attempt budget).
 */
const DELIVERIES_SQL = `
  SELECT d.alert_event_id AS id, min(d.kind) AS type, min(d.tenant_id) AS tenant_id, min(d.id) AS seq,
         count(*)::int AS attempts, min(d.created_at) AS first_attempt_at, max(d.created_at) AS last_attempt_at,
         (array_agg(d.status ORDER BY d.id DESC))[1] AS last_status,
         (array_agg(d.response_status ORDER BY d.id DESC))[1] AS last_response_status,
         (array_agg(d.error ORDER BY d.id DESC))[1] AS last_error,
         (SELECT max(r.requested_at) FROM alert_redeliveries r WHERE r.alert_event_id = d.alert_event_id) AS redelivery_requested_at
    FROM alert_deliveries d
   WHERE ($1::uuid IS NULL OR d.alert_event_id = $1)
   GROUP BY d.alert_event_id`;

type AlertDeliveryStatus = 'delivered' | 'failed' | 'redelivering';

export interface AlertDeliveryRow {
  id: string;
  type: string;
  tenant_id: string | null;
  seq: string;
  attempts: number;
  first_attempt_at: Date;
  last_attempt_at: Date;
  last_status: 'delivered' | 'failed';
  last_response_status: number | null;
  last_error: string | null;
  redelivery_requested_at: Date | null;
}

export interface AlertDeliveryFilter {
  status: AlertDeliveryStatus | null;
  tenantId: string | null;
  /** Only rows older than this position (`seq`), for the next page. */
  before: string | null;
  limit: number;
}

@Injectable()
export class AlertDeliveriesRepository {
  /** Newest first; `status` is that of the last attempt, or `redelivering` after a request. */
  async page(db: EntityManager, filter: AlertDeliveryFilter): Promise<AlertDeliveryRow[]> {
    return db.query<AlertDeliveryRow[]>(
      `SELECT * FROM (${DELIVERIES_SQL}) x
        WHERE ($2::text IS NULL OR tenant_id = $2) AND ($3::bigint IS NULL OR seq < $3)
          AND ($4::text IS NULL OR CASE WHEN redelivery_requested_at > last_attempt_at THEN 'redelivering' ELSE last_status END = $4)
        ORDER BY seq DESC LIMIT $5`,
      [null, filter.tenantId, filter.before, filter.status, filter.limit],
    );
  }

  async find(db: EntityManager, alertEventId: string): Promise<AlertDeliveryRow | undefined> {
    const [row] = await db.query<AlertDeliveryRow[]>(DELIVERIES_SQL, [alertEventId]);
    return row;
  }

  /** The alert's event is still in the outbox, so the monitor can send it again. */
  async isKept(db: EntityManager, alertEventId: string): Promise<boolean> {
    const rows = await db.query<unknown[]>('SELECT 1 FROM outbox WHERE id = $1', [alertEventId]);
    return rows.length > 0;
  }

  async requestRedelivery(tx: EntityManager, alertEventId: string, requestedBy: string, correlationId: string): Promise<void> {
    await tx.query('INSERT INTO alert_redeliveries (alert_event_id, requested_by, correlation_id) VALUES ($1, $2, $3)', [alertEventId, requestedBy, correlationId]);
  }
}
