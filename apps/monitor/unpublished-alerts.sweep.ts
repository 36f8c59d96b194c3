import { hurryUnpublishedOutboxRows, Sweep } from '@keyward/messaging';
import { ALERT_EVENT_TYPES } from './monitor-metrics';

/**
 * The monitor's sweep: an alert committed with its state change but still not published to the
 * broker after the threshold (the relay backing off after unroutable returns, or stalled). It is
 * made due now and the relays are woken. Webhook delivery has its own retries (AlertDeliveryWorker).
 */
export const unpublishedAlertsSweep: Sweep = {
  kind: 'alert_unpublished',
  async run(tx, limits) {
    const redriven = await hurryUnpublishedOutboxRows(tx, ALERT_EVENT_TYPES, limits.stuckAfterSeconds, limits.batch);
    return { redriven, gaveUp: [] };
  },
};
