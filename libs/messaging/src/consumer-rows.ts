import type { DataSource } from 'typeorm';

/** Tables of rows per (consumer, event id) that are needed only for a while, and what dates a row. */
const DATED_BY = { inbox: 'processed_at', redeliveries: 'last_delivered_at' } as const;

/**
 * Deletes up to 10,000 of `consumer`'s rows of `table` dated before the retention (the hourly
 * rounds take the rest); how many. Only this consumer's rows: replicas of other services prune
 * their own.
 */
export async function pruneConsumerRows(dataSource: DataSource, table: keyof typeof DATED_BY, consumer: string, retentionDays: number): Promise<number> {
  const rows = await dataSource.query<unknown[]>(
    `DELETE FROM ${table} WHERE (consumer, event_id) IN (
       SELECT consumer, event_id FROM ${table}
       WHERE consumer = $1 AND ${DATED_BY[table]} < now() - make_interval(days => $2) LIMIT 10000)
     RETURNING 1`,
    [consumer, retentionDays],
  );
  return rows.length;
}
