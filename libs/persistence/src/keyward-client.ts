import * as pg from 'pg';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { pipelined, PipelinedStatement } from './pipelined-statements';
import { answerRows } from './prepared-query';

interface Rider {
  statements: (string | PipelinedStatement)[];
  /** The rows of each statement the rider carried, in order. */
  resolve: (rowsOfEach: unknown[][]) => void;
}

const START = 'START TRANSACTION';
const COMMIT = 'COMMIT';
const ROLLBACK = 'ROLLBACK';

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
 * `startTransactionWithEach`) and as its commit (see `inTransactionStartedWithEach`'s `atCommit`).
 */
export class KeywardClient extends pg.Client {
  private rider?: Rider;
  private commitRiders?: PipelinedStatement[];

  constructor(config?: ConstructorParameters<typeof pg.Client>[0]) {
    super(config);
    this.on('error', () => undefined);
    const send = this.query.bind(this) as (...args: unknown[]) => unknown;
    // pg's query() has many overloads; only TypeORM's plain START TRANSACTION, and its COMMIT or
    // ROLLBACK while statements wait to ride with the commit, are ever changed.
    this.query = ((...args: unknown[]) => {
      const plain = args[1] === undefined && args.length <= 2;
      if (this.commitRiders && plain && (args[0] === COMMIT || args[0] === ROLLBACK)) {
        const statements = this.commitRiders;
        this.commitRiders = undefined;
        // Rolled back instead: what was to ride with the commit is dropped with the transaction.
        if (args[0] === ROLLBACK) return send(...args);
        // A failing statement fails the commit (Postgres skips to the pipeline's end): TypeORM's
        // commitTransaction() throws, the transaction stays open for the caller's rollback.
        return pipelined(this, [...statements, { text: COMMIT }]).then(() => ({ command: COMMIT, rows: [], rowCount: null }));
      }
      const rider = this.rider;
      if (!rider || args[0] !== START || !plain) return send(...args);
      this.rider = undefined;
      // A failure fails the start too: TypeORM's startTransaction() throws it to the caller.
      if (rider.statements.every((statement) => typeof statement === 'string')) {
        return (send(`${START}; ${rider.statements.join(';\n')}`) as Promise<pg.QueryResult[]>).then((results) => {
          rider.resolve(answerRows(results.slice(1)));
          return results[0];
        });
      }
      // Values to bind: the extended protocol's pipeline, the start first in it.
      return pipelined(this, [{ text: START }, ...rider.statements.map(asStatement)]).then((rowsOfEach) => {
        rider.resolve(rowsOfEach.slice(1));
        return { command: 'BEGIN', rows: [], rowCount: null };
      });
    }) as typeof this.query;
  }

  /** Registers `statement` for the next START TRANSACTION; false when one is already waiting. */
  ride(rider: Rider): boolean {
    if (this.rider) return false;
    this.rider = rider;
    return true;
  }

  /** Registers statements to go in the round trip of the next COMMIT (as a pipeline, before it); a ROLLBACK drops them. */
  rideWithCommit(statements: PipelinedStatement[]): void {
    if (this.commitRiders) throw new Error('Statements already wait for this commit');
    this.commitRiders = statements;
  }

  /** Drops statements that did not go with a commit (the commit was never sent). */
  unrideCommit(): void {
    this.commitRiders = undefined;
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
 * open: a nested transaction() or save() becomes a savepoint) and runs `statements` as the
 * transaction's first statements in the same round trip: keyward's client sends text ones with
 * the start as one simple query (their values as escaped literals, `pg.escapeLiteral`), and any
 * with values to bind as a pipeline. If the start was not TypeORM's plain START TRANSACTION, they
 * run on their own after it. Each one's rows, in order. In READ COMMITTED each statement takes its own snapshot when it starts, so a statement
 * after one that waited for a lock sees what the lock's previous holder committed.
 */
export async function startTransactionWithEach(runner: QueryRunner, statements: (string | PipelinedStatement)[]): Promise<unknown[][]> {
  const client = (await runner.connect()) as unknown;
  if (!(client instanceof KeywardClient)) {
    await runner.startTransaction();
    return inOneRoundTripOn(client as pg.Client, statements);
  }
  let rowsOfEach: unknown[][] | undefined;
  const rider: Rider = { statements, resolve: (result) => (rowsOfEach = result) };
  const riding = client.ride(rider);
  try {
    await runner.startTransaction();
  } finally {
    if (riding) client.unride(rider);
  }
  if (riding && rowsOfEach) return rowsOfEach;
  return inOneRoundTripOn(client, statements);
}

/** Text statements as one simple query (as they would have ridden), otherwise a pipeline. */
async function inOneRoundTripOn(client: pg.Client, statements: (string | PipelinedStatement)[]): Promise<unknown[][]> {
  if (statements.every((statement) => typeof statement === 'string')) return answerRows(await client.query(statements.join(';\n')));
  return pipelined(client, statements.map(asStatement));
}

/** A statement of the simple-query form (values as literals) as one of a pipeline. */
function asStatement(statement: string | PipelinedStatement): PipelinedStatement {
  return typeof statement === 'string' ? { text: statement } : statement;
}

/**
 * What a transaction's work answers: its result, and statements whose results nobody reads (the
 * audit log's insert, say) to send in the commit's round trip, before the COMMIT. Postgres runs
 * them as the transaction's last statements; if one fails, nothing commits.
 */
export interface TransactionOutcome<T> {
  result: T;
  atCommit?: PipelinedStatement[];
}

/**
 * TypeORM's own transaction (ADR 0036: it knows the transaction is open, so a nested
 * transaction() or save() inside `work` becomes a savepoint), started together with `first` in
 * one round trip; `work` gets `first`'s rows. Commits (with `atCommit` in the commit's round
 * trip), or rolls back when `work` answers undefined (nothing to do) or throws.
 */
export async function inTransactionStartedWith<R, T>(
  dataSource: DataSource,
  first: string | PipelinedStatement,
  work: (manager: EntityManager, rows: R[]) => Promise<TransactionOutcome<T> | undefined>,
): Promise<{ result: T } | undefined> {
  return inTransactionStartedWithEach<T>(dataSource, [first], (manager, [rows]) => work(manager, rows as R[]));
}

/**
 * `inTransactionStartedWith` for several statements sent with the start; `work` gets each one's
 * rows, in order. Statements given as text carry their values as literals and go with the start as
 * one simple query; with any `PipelinedStatement` among them, all go as a pipeline, values bound.
 */
export async function inTransactionStartedWithEach<T>(
  dataSource: DataSource,
  statements: (string | PipelinedStatement)[],
  work: (manager: EntityManager, rowsOfEach: unknown[][]) => Promise<TransactionOutcome<T> | undefined>,
): Promise<{ result: T } | undefined> {
  const runner = dataSource.createQueryRunner();
  try {
    const rowsOfEach = await startTransactionWithEach(runner, statements);
    const outcome = await work(runner.manager, rowsOfEach);
    if (!outcome) {
      await runner.rollbackTransaction();
      return undefined;
    }
    await commitWith(runner, outcome.atCommit ?? []);
    return { result: outcome.result };
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}

/** TypeORM's commit of the runner's transaction, with `statements` in its round trip (on keyward's client; before it otherwise). */
async function commitWith(runner: QueryRunner, statements: PipelinedStatement[]): Promise<void> {
  const client = statements.length > 0 ? ((await runner.connect()) as unknown) : undefined;
  if (!(client instanceof KeywardClient)) {
    if (client) await pipelined(client as pg.Client, statements);
    return runner.commitTransaction();
  }
  client.rideWithCommit(statements);
  try {
    await runner.commitTransaction();
  } finally {
    // Never left for the next user of this pooled connection, should TypeORM not have sent the COMMIT.
    client.unrideCommit();
  }
}
