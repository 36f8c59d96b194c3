import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { z } from 'zod';
import { PROVIDER_TENANT_ID, Refusal } from '@keyward/contracts';
import { AuditLog } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { AlertDeliveriesRepository, AlertDeliveryFilter, AlertDeliveryRow } from './alert-deliveries.repository';
import type { ALERT_DELIVERY } from './alert-delivery.schema';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One alert's deliveries; `id` is the alert event's, also the `webhook-id` the receiver saw. */
type AlertDeliveryView = z.infer<typeof ALERT_DELIVERY>;

@Injectable()
export class AlertDeliveriesService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(AlertDeliveriesRepository) private readonly repository: AlertDeliveriesRepository,
  ) {}

  /** Newest first; `status` is that of the last attempt, or `redelivering` after a request. */
  async list(query: AlertDeliveryFilter): Promise<{ deliveries: AlertDeliveryView[]; nextCursor: string | null }> {
    const rows = await this.repository.page(this.dataSource.manager, { ...query, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    return { deliveries: page.map(view), nextCursor: rows.length > query.limit ? String(page[page.length - 1].seq) : null };
  }

  /**
   * Asks the monitor to send the alert again, with the same `webhook-id` (a receiver that already
   * has it can drop it). Possible while the alert's event is still kept in the outbox.
   */
  async redeliver(id: string, caller: Caller, correlationId: string): Promise<AlertDeliveryView> {
    if (!UUID.test(id)) throw new Refusal('alert_not_found');
    const db = this.dataSource.manager;
    const row = await this.repository.find(db, id);
    if (!row) throw new Refusal('alert_not_found');
    if (!(await this.repository.isKept(db, id))) throw new Refusal('alert_no_longer_available');
    await this.dataSource.transaction(async (tx) => {
      await this.repository.requestRedelivery(tx, id, caller.actor, correlationId);
      await AuditLog.append(tx, {
        tenantId: row.tenant_id ?? PROVIDER_TENANT_ID,
        actor: caller.actor,
        action: 'alert.redelivery_requested',
        correlationId,
        details: { alertEventId: id, kind: row.type, attemptsBefore: row.attempts },
      });
    });
    return view((await this.repository.find(db, id))!);
  }
}

function view(row: AlertDeliveryRow): AlertDeliveryView {
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
