import { DataSource, EntityManager } from 'typeorm';
import { EventEnvelope } from '@keyward/contracts';

export type InboxResult<T> = { duplicate: true } | { duplicate: false; result: T };

/**
 * Idempotent consumption: the handler's writes and the inbox row for (consumer, event id) commit
 * in one transaction. A redelivered event finds its row and changes nothing.
 */
export const Inbox = {
  async runOnce<T>(
    dataSource: DataSource,
    consumer: string,
    event: EventEnvelope,
    work: (tx: EntityManager) => Promise<T>,
  ): Promise<InboxResult<T>> {
    return dataSource.transaction(async (tx) => {
      const inserted = (await tx.query(
        `INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`,
        [consumer, event.id, event.type],
      )) as unknown[];
      if (inserted.length === 0) return { duplicate: true } as const;
      return { duplicate: false, result: await work(tx) } as const;
    });
  },

  /** A cheap look before slow work (a Pleo call); `runOnce` still decides. */
  async seen(dataSource: DataSource, consumer: string, eventId: string): Promise<boolean> {
    const rows = (await dataSource.query('SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2', [consumer, eventId])) as unknown[];
    return rows.length > 0;
  },
};
