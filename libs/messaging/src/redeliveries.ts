import type { DataSource } from 'typeorm';
import { pruneConsumerRows } from './consumer-rows';

/**
 * `redeliveries`: how often each consumer was handed an event without settling it (the delivery
 * limit on any queue type, security review finding 25). A row matters only while its event is
 * being redelivered, so rows untouched for the inbox's retention are pruned with it.
 */
export const Redeliveries = {
  /** Counts one more unsettled delivery of the event to `consumer`; returns the count. */
  async count(dataSource: DataSource, consumer: string, eventId: string): Promise<number> {
    const rows = await dataSource.query<{ deliveries: number }[]>(
      `INSERT INTO redeliveries (consumer, event_id, deliveries) VALUES ($1, $2, 1)
       ON CONFLICT (consumer, event_id) DO UPDATE SET deliveries = redeliveries.deliveries + 1, last_delivered_at = now()
       RETURNING deliveries`,
      [consumer, eventId],
    );
    return Number(rows[0].deliveries);
  },

  /** Forgets this consumer's counts last touched over `retentionDays` ago; how many. */
  prune(dataSource: DataSource, consumer: string, retentionDays: number): Promise<number> {
    return pruneConsumerRows(dataSource, 'redeliveries', consumer, retentionDays);
  },
};
