import type { PoolClient, QueryResult } from 'pg';
import { EntityManager } from 'typeorm';
import { pipelinedOnce } from './pipelined-statements';

/**
 * Runs a hot-path statement as a named prepared statement on the transaction's connection, so
 * Postgres parses and plans it once per connection instead of once per event. The connection is
 * what TypeORM's documented `QueryRunner.connect()` returns (the runner's own, already obtained);
 * no TypeORM field is read (ADR 0036). A manager without a runner (the pool's) runs it on a pool
 * connection of its own, as TypeORM's `query` would, prepared there too.
 */
export async function preparedQuery<T>(tx: EntityManager, name: string, text: string, values: unknown[]): Promise<T[]> {
  if (!tx.queryRunner) {
    const [rows] = await pipelinedOnce(tx.connection, [{ name, text, values }]);
    return rows as T[];
  }
  // TypeORM's own query for a released runner: it refuses, as it should.
  if (tx.queryRunner.isReleased) return tx.query<T[]>(text, values);
  const client = (await tx.queryRunner.connect()) as PoolClient;
  const result = await client.query({ name, text, values });
  return result.rows as T[];
}

/** Each statement's rows from a simple query's answer: pg answers one statement with a result, several with an array. */
export function answerRows<T = unknown>(answer: unknown): T[][] {
  const results = answer as QueryResult | QueryResult[];
  return (Array.isArray(results) ? results : [results]).map((r) => r.rows as T[]);
}
