import type { PoolClient, QueryResult } from 'pg';
import { EntityManager } from 'typeorm';

/**
 * Runs a hot-path statement as a named prepared statement on the transaction's connection, so
 * Postgres parses and plans it once per connection instead of once per event. The connection is
 * what TypeORM's documented `QueryRunner.connect()` returns (the runner's own, already obtained);
 * no TypeORM field is read (ADR 0036).
 */
export async function preparedQuery<T>(tx: EntityManager, name: string, text: string, values: unknown[]): Promise<T[]> {
  // TypeORM's own query for a released runner (it refuses) or a manager without one (the pool).
  if (!tx.queryRunner || tx.queryRunner.isReleased) return tx.query<T[]>(text, values);
  const client = (await tx.queryRunner.connect()) as PoolClient;
  const result = await client.query({ name, text, values });
  return result.rows as T[];
}

/**
 * Several statements in one round trip on the transaction's connection, as one simple query, so
 * their values are literals (`pg.escapeLiteral`); each statement's rows, in order. In READ
 * COMMITTED each statement takes its own snapshot when it starts, so a read after a lock in the
 * same round trip sees everything the lock's previous holder committed — which a read in the
 * locking statement itself would not. Needs the caller's transaction (its runner).
 */
export async function inOneRoundTrip<T = unknown>(tx: EntityManager, statements: string[]): Promise<T[][]> {
  if (!tx.queryRunner || tx.queryRunner.isReleased) throw new Error("inOneRoundTrip runs in the caller's transaction");
  const client = (await tx.queryRunner.connect()) as PoolClient;
  return answerRows<T>(await client.query(statements.join(';\n')));
}

/** Each statement's rows from a simple query's answer: pg answers one statement with a result, several with an array. */
export function answerRows<T = unknown>(answer: unknown): T[][] {
  const results = answer as QueryResult | QueryResult[];
  return (Array.isArray(results) ? results : [results]).map((r) => r.rows as T[]);
}
