import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { z } from 'zod';
import { PROVIDER_TENANT_ID, Refusal } from '@keyward/contracts';
import { AuditLog } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import type { ALERT_DELIVERY } from './alert-delivery.schema';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One alert's deliveries; `id` is the alert event's, also the `webhook-id` the receiver saw. */
type AlertDeliveryView = z.infer<typeof ALERT_DELIVERY>;
type AlertDeliveryStatus = AlertDeliveryView['status'];

export interface AlertDeliveryQuery {
  status: AlertDeliveryStatus | null;
  tenantId: string | null;
  before: string | null;
  limit: number;
}

/**
 * Alert webhook deliveries, one row per alert from the monitor's attempts (`alert_deliveries`),
 * and the operator's "send it again" (`alert_redeliveries`, intake's own table, which the monitor's
 * webhook worker acts on with a fresh attempt budget).
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

interface Row {
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

@Injectable()
export class AlertDeliveriesService {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Newest first; `status` is that of the last attempt, or `redelivering` after a request. */
  async list(query: AlertDeliveryQuery): Promise<{ deliveries: AlertDeliveryView[]; nextCursor: string | null }> {
    const rows = await this.dataSource.query<Row[]>(
      `SELECT * FROM (${DELIVERIES_SQL}) x
        WHERE ($2::text IS NULL OR tenant_id = $2) AND ($3::bigint IS NULL OR seq < $3)
          AND ($4::text IS NULL OR CASE WHEN redelivery_requested_at > last_attempt_at THEN 'redelivering' ELSE last_status END = $4)
        ORDER BY seq DESC LIMIT $5`,
      [null, query.tenantId, query.before, query.status, query.limit + 1],
    );
    const page = rows.slice(0, query.limit);
    return { deliveries: page.map(view), nextCursor: rows.length > query.limit ? String(page[page.length - 1].seq) : null };
  }

  /**
   * Asks the monitor to send the alert again, with the same `webhook-id` (a receiver that already
   * has it can drop it). Possible while the alert's event is still kept in the outbox.
   */
  async redeliver(id: string, caller: Caller, correlationId: string): Promise<AlertDeliveryView> {
    if (!UUID.test(id)) throw new Refusal('alert_not_found');
    const [row] = await this.dataSource.query<Row[]>(DELIVERIES_SQL, [id]);
    if (!row) throw new Refusal('alert_not_found');
    const kept = await this.dataSource.query<unknown[]>('SELECT 1 FROM outbox WHERE id = $1', [id]);
    if (kept.length === 0) throw new Refusal('alert_no_longer_available');
    await this.dataSource.transaction(async (tx) => {
      await tx.query('INSERT INTO alert_redeliveries (alert_event_id, requested_by, correlation_id) VALUES ($1, $2, $3)', [id, caller.actor, correlationId]);
      await AuditLog.append(tx, {
        tenantId: row.tenant_id ?? PROVIDER_TENANT_ID,
        actor: caller.actor,
        action: 'alert.redelivery_requested',
        correlationId,
        details: { alertEventId: id, kind: row.type, attemptsBefore: row.attempts },
      });
    });
    const [updated] = await this.dataSource.query<Row[]>(DELIVERIES_SQL, [id]);
    return view(updated);
  }
}

function view(row: Row): AlertDeliveryView {
  const redelivering = row.redelivery_requested_at !== null && row.redelivery_requested_at > row.last_attempt_at;
  return {
    id: row.id,
    type: row.type,
    tenantId: row.tenant_id,
    status: redelivering ? 'redelivering' : row.last_status,
    attempts: row.attempts,
    firstAttemptAt: row.first_attempt_at.toISOString(),
    lastAttemptAt: row.last_attempt_at.toISOString(),
    lastResponseStatus: row.last_response_status,
    lastError: row.last_error,
    redeliveryRequestedAt: row.redelivery_requested_at?.toISOString() ?? null,
  };
}
