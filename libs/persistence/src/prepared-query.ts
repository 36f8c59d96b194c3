import type { PoolClient } from 'pg';
import { EntityManager } from 'typeorm';

/**
 * Runs a hot-path statement as a named prepared statement on the transaction's connection, so
 * Postgres parses and plans it once per connection instead of once per event. Falls back to a
 * plain query when the manager has no dedicated connection.
 */
export async function preparedQuery<T>(tx: EntityManager, name: string, text: string, values: unknown[]): Promise<T[]> {
  const client = (tx.queryRunner as { databaseConnection?: PoolClient } | undefined)?.databaseConnection;
  if (!client) return tx.query<T[]>(text, values);
  const result = await client.query({ name, text, values });
  return result.rows as T[];
}
