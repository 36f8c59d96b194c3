import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { PoolClient } from 'pg';
import { EventEnvelope } from '@keyward/contracts';
import { preparedQuery } from '@keyward/persistence';

export type InboxResult<T> = { duplicate: true } | { duplicate: false; result: T };

const CONSUMER = /^[a-z][a-z0-9-]{0,63}$/;

/** A transaction shared by a batch of deliveries whose inbox rows were claimed up front. */
interface InboxBatch {
  consumer: string;
  manager: EntityManager;
  claimed: Set<string>;
}

const batchScope = new AsyncLocalStorage<InboxBatch>();

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
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer) {
      // Inside a batch the claim was made for every event at once; a second claim is a duplicate.
      if (!batch.claimed.delete(event.id)) return { duplicate: true };
      return { duplicate: false, result: await work(batch.manager) };
    }
    const runner: QueryRunner = dataSource.createQueryRunner();
    const client = (await runner.connect()) as PoolClient;
    let open = false;
    try {
      // BEGIN and the inbox claim travel in one round trip (simple query protocol, so values are
      // escaped literals; the event id and type were checked against the schema already).
      const results = (await client.query(
        `BEGIN; INSERT INTO inbox (consumer, event_id, event_type) VALUES (${client.escapeLiteral(consumer)}, ` +
          `${client.escapeLiteral(event.id)}::uuid, ${client.escapeLiteral(event.type)}) ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`,
      )) as unknown as { rowCount: number | null }[];
      open = true;
      // Tell TypeORM a transaction is open, so a nested transaction() becomes a savepoint.
      Object.assign(runner, { isTransactionActive: true, transactionDepth: 1 });
      if (!results[1]?.rowCount) {
        await client.query('ROLLBACK');
        open = false;
        return { duplicate: true };
      }
      const result = await work(runner.manager);
      await client.query('COMMIT');
      open = false;
      return { duplicate: false, result };
    } catch (error) {
      if (open) await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      Object.assign(runner, { isTransactionActive: false, transactionDepth: 0 });
      await runner.release();
    }
  },

  /**
   * `runOnce` for a group of events decided together (a group handler, see `batchPattern`): `work`
   * gets the events not processed before, each once, in the order given. Inside a batch of the same
   * consumer it joins the batch's transaction and claims; otherwise it claims them all with one
   * statement in a transaction of its own.
   */
  async runMany<E extends EventEnvelope, T>(
    dataSource: DataSource,
    consumer: string,
    events: E[],
    work: (tx: EntityManager, fresh: E[]) => Promise<T>,
  ): Promise<T> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer) return work(batch.manager, events.filter((e) => batch.claimed.delete(e.id)));
    return Inbox.runBatch(dataSource, consumer, events, () => Inbox.runMany(dataSource, consumer, events, work));
  },

  /** A cheap look before slow work (a Pleo call); `runOnce` still decides. */
  async seen(dataSource: DataSource, consumer: string, eventId: string): Promise<boolean> {
    const rows = await dataSource.query<unknown[]>('SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2', [consumer, eventId]);
    return rows.length > 0;
  },

  /**
   * Runs `handle` for several events in ONE transaction: their inbox rows are claimed with one
   * statement, each handler's `runOnce` for `consumer` joins the shared transaction, and everything
   * commits together. If anything fails, nothing of the batch commits (the caller then handles the
   * events one by one). Fewer round trips and commits per event, same exactly-once effect.
   */
  async runBatch<T>(dataSource: DataSource, consumer: string, events: EventEnvelope[], handle: () => Promise<T>): Promise<T> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const unique = [...new Map(events.map((e) => [e.id, e.type])).entries()];
    return dataSource.transaction(async (manager) => {
      const rows = await preparedQuery<{ event_id: string }>(
        manager,
        'inbox_claim_batch',
        `INSERT INTO inbox (consumer, event_id, event_type)
         SELECT $1, t.id, t.type FROM unnest($2::uuid[], $3::text[]) AS t(id, type)
         ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`,
        [consumer, unique.map(([id]) => id), unique.map(([, type]) => type)],
      );
      return batchScope.run({ consumer, manager, claimed: new Set(rows.map((r) => r.event_id)) }, handle);
    });
  },

  /** Forgets processed ids older than the retention (a redelivery that late is not expected). */
  async prune(dataSource: DataSource, consumer: string, retentionDays: number): Promise<number> {
    const rows = await dataSource.query<unknown[]>(
      `DELETE FROM inbox WHERE (consumer, event_id) IN (
         SELECT consumer, event_id FROM inbox
         WHERE consumer = $1 AND processed_at < now() - make_interval(days => $2) LIMIT 10000)
       RETURNING 1`,
      [consumer, retentionDays],
    );
    return rows.length;
  },
};
