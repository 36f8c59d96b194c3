import { returnedRows, Sweep } from '@keyward/messaging';
import { ALERT_EVENT_TYPES } from './monitor-metrics';

/**
 * The monitor's sweep: an alert committed with its state change but still not published to the
 * broker after the threshold (the relay backing off after unroutable returns, or stalled). It is
 * made due now and the relays are woken. Webhook delivery has its own retries (AlertDeliveryWorker).
 */
export const unpublishedAlertsSweep: Sweep = {
  kind: 'alert_unpublished',
  async run(tx, limits) {
    const updated = returnedRows<{ id: string }>(
      await tx.query(
      `UPDATE outbox SET available_at = now()
       WHERE id IN (
         SELECT id FROM outbox WHERE event_type = ANY($1) AND published_at IS NULL AND created_at < now() - make_interval(secs => $2)
         ORDER BY seq LIMIT $3)
       RETURNING id::text`,
      [ALERT_EVENT_TYPES, limits.stuckAfterSeconds, limits.batch],
      ),
    );
    if (updated.length > 0) await tx.query(`SELECT pg_notify('keyward_outbox', '')`);
    return { redriven: updated.map((r) => r.id), gaveUp: [] };
  },
};
