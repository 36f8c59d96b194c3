import * as pg from 'pg';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { answerRows } from './prepared-query';

interface Rider {
  statement: string;
  /** The rows of each statement the rider carried, in order. */
  resolve: (rowsOfEach: unknown[][]) => void;
}

const START = 'START TRANSACTION';

/**
 * The pg client of every pool keyward makes (pg-pool's documented `Client` option).
 *
 * It always has an `error` listener. pg emits `error` on a client whose connection dies while no
 * query of it is running (a Postgres restart, `pg_terminate_backend`); TypeORM listens only while
 * a query runner holds the client and pg-pool only while it is idle, so an error outside both
 * windows would end the process (the chaos suite saw rotation die this way). Nothing is lost by
 * ignoring it here: the next query on the client fails, and the pool discards it.
 *
 * It can also send statements in the same round trip as the transaction's start (see
 * `startTransactionWith`).
 */
export class KeywardClient extends pg.Client {
  private rider?: Rider;

  constructor(config?: ConstructorParameters<typeof pg.Client>[0]) {
    super(config);
    this.on('error', () => undefined);
    const send = this.query.bind(this) as (...args: unknown[]) => unknown;
    // pg's query() has many overloads; only TypeORM's plain START TRANSACTION is ever changed.
    this.query = ((...args: unknown[]) => {
      const rider = this.rider;
      if (!rider || args[0] !== START || args[1] !== undefined || args.length > 2) return send(...args);
      this.rider = undefined;
      // A failure fails the start too: TypeORM's startTransaction() throws it to the caller.
      return (send(`${START}; ${rider.statement}`) as Promise<pg.QueryResult[]>).then((results) => {
        rider.resolve(answerRows(results.slice(1)));
        return results[0];
      });
    }) as typeof this.query;
  }

  /** Registers `statement` for the next START TRANSACTION; false when one is already waiting. */
  ride(rider: Rider): boolean {
    if (this.rider) return false;
    this.rider = rider;
    return true;
  }

  /** Takes back a statement that did not ride; true when it was still waiting. */
  unride(rider: Rider): boolean {
    if (this.rider !== rider) return false;
    this.rider = undefined;
    return true;
  }
}

/**
 * Starts the runner's transaction with TypeORM's `startTransaction()` (so TypeORM knows it is
 * open: a nested transaction() or save() becomes a savepoint) and runs `statement` as the
 * transaction's first statement in the same round trip: keyward's client sends both as one
 * simple query. `statement` therefore carries its values as escaped literals (`pg.escapeLiteral`).
 * If the start was not TypeORM's plain START TRANSACTION, the statement runs on its own after it.
 */
export async function startTransactionWith<T>(runner: QueryRunner, statement: string): Promise<T[]> {
  const [rows] = await startTransactionWithEach(runner, [statement]);
  return rows as T[];
}

/**
 * `startTransactionWith` for several statements, all in the start's round trip; each one's rows,
 * in order. In READ COMMITTED each statement takes its own snapshot when it starts, so a statement
 * after one that waited for a lock sees what the lock's previous holder committed.
 */
export async function startTransactionWithEach(runner: QueryRunner, statements: string[]): Promise<unknown[][]> {
  const client = (await runner.connect()) as unknown;
  if (!(client instanceof KeywardClient)) {
    await runner.startTransaction();
    const rowsOfEach: unknown[][] = [];
    for (const statement of statements) rowsOfEach.push((await runner.query(statement)) as unknown[]);
    return rowsOfEach;
  }
  const statement = statements.join(';\n');
  let rowsOfEach: unknown[][] | undefined;
  const rider: Rider = { statement, resolve: (result) => (rowsOfEach = result) };
  const riding = client.ride(rider);
  try {
    await runner.startTransaction();
  } finally {
    if (riding) client.unride(rider);
  }
  if (riding && rowsOfEach) return rowsOfEach;
  return answerRows(await client.query(statement));
}

/**
 * TypeORM's own transaction (ADR 0036: it knows the transaction is open, so a nested
 * transaction() or save() inside `work` becomes a savepoint), started together with `first` in
 * one round trip; `work` gets `first`'s rows. Commits, or rolls back when `work` answers
 * undefined (nothing to do) or throws.
 */
export async function inTransactionStartedWith<R, T>(
  dataSource: DataSource,
  first: string,
  work: (manager: EntityManager, rows: R[]) => Promise<{ result: T } | undefined>,
): Promise<{ result: T } | undefined> {
  return inTransactionStartedWithEach<T>(dataSource, [first], (manager, [rows]) => work(manager, rows as R[]));
}

/** `inTransactionStartedWith` for several statements sent with the start; `work` gets each one's rows, in order. */
export async function inTransactionStartedWithEach<T>(
  dataSource: DataSource,
  statements: string[],
  work: (manager: EntityManager, rowsOfEach: unknown[][]) => Promise<{ result: T } | undefined>,
): Promise<{ result: T } | undefined> {
  const runner = dataSource.createQueryRunner();
  try {
    const rowsOfEach = await startTransactionWithEach(runner, statements);
    const outcome = await work(runner.manager, rowsOfEach);
    if (outcome) await runner.commitTransaction();
    else await runner.rollbackTransaction();
    return outcome;
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}
