import * as pg from 'pg';
import type { DataSource, EntityManager } from 'typeorm';
import { prepareValue } from 'pg/lib/utils';

/** One statement of a pipeline: its values go as bind parameters; a named one is parsed once per connection. */
export interface PipelinedStatement {
  text: string;
  values?: unknown[];
  /** A prepared statement's name (as `preparedQuery`'s): parsed on the connection's first use, then only bound. */
  name?: string;
}

/** What pg's connection offers a query while it is the client's active one (pg's documented `Submittable`). */
interface Connection {
  stream: { cork?: () => void; uncork?: () => void };
  parsedStatements: Record<string, string>;
  parse(message: { text: string; name?: string; types?: number[] }): void;
  bind(message: { portal?: string; statement?: string; values?: unknown[]; valueMapper?: (value: unknown) => unknown }): void;
  describe(message: { type: 'P' | 'S'; name?: string }): void;
  execute(message: { portal?: string; rows?: number }): void;
  sync(): void;
  on(event: 'parseComplete', listener: () => void): void;
  removeListener(event: 'parseComplete', listener: () => void): void;
}

interface Field {
  name: string;
  dataTypeID: number;
}

/**
 * Several statements in ONE round trip with the extended protocol: each statement's Parse (a
 * named one only the first time on the connection), Bind, Describe and Execute, then a single
 * Sync, written with one system call. Unlike a simple query of several statements, values travel as
 * bind parameters, never as literals in the statement's text, and named statements keep their
 * prepared plans. Postgres runs the statements in order; in READ COMMITTED each takes its own
 * snapshot when it starts, as in a simple query. Without an explicit transaction they run as one
 * implicit transaction that commits at the Sync; a `START TRANSACTION` among them keeps it open.
 * The first error stops the rest (Postgres skips to the Sync) and fails the whole call.
 *
 * A pg `Submittable`: the client sends it when its turn comes, like any query, and hands it the
 * messages of the answer; pg's own `Query` does the same for one statement.
 */
class Pipeline {
  readonly rowsOfEach: unknown[][] = [];
  private fields: Field[] = [];
  private rows: unknown[] = [];
  private failure?: Error;
  private parsing: { name: string; text: string }[] = [];
  private parsed = 0;
  private readonly onParseComplete = () => {
    this.parsed += 1;
  };
  private connection?: Connection;
  callback?: (error: Error | undefined, rowsOfEach?: unknown[][]) => void;

  constructor(
    /** What it sends, readable by whoever watches the client's queries (specs that check statement text). */
    readonly statements: PipelinedStatement[],
    private readonly parser: (oid: number) => (value: string) => unknown,
  ) {}

  submit(connection: Connection): void {
    this.connection = connection;
    connection.on('parseComplete', this.onParseComplete);
    connection.stream.cork?.();
    try {
      for (const { text, values, name } of this.statements) {
        if (!name || connection.parsedStatements[name] === undefined) {
          connection.parse({ text, name });
          if (name) this.parsing.push({ name, text });
        }
        connection.bind({ statement: name, values: values ?? [], valueMapper: prepareValue });
        connection.describe({ type: 'P' });
        connection.execute({});
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
  }

  handleRowDescription(message: { fields: Field[] }): void {
    this.fields = message.fields;
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    if (this.failure) return;
    const row: Record<string, unknown> = {};
    try {
      message.fields.forEach((value, i) => {
        const field = this.fields[i];
        row[field.name] = value === null ? null : this.parser(field.dataTypeID)(value);
      });
    } catch (error) {
      // Reported once the answer is complete, as pg's Query does with a value it cannot parse.
      this.failure = error as Error;
      return;
    }
    this.rows.push(row);
  }

  handleCommandComplete(): void {
    this.rowsOfEach.push(this.rows);
    this.rows = [];
    this.fields = [];
  }

  handleEmptyQuery(): void {
    this.handleCommandComplete();
  }

  handleError(error: Error): void {
    // The client makes this query inactive on an error: the Sync's ReadyForQuery is not ours to wait for.
    this.failure ??= error;
    this.settle();
  }

  handleReadyForQuery(): void {
    this.settle();
  }

  handlePortalSuspended(): void {
    this.handleError(new Error('A pipelined statement was suspended; pipelines take every row at once'));
  }

  handleCopyInResponse(): void {
    this.handleError(new Error('COPY is not supported in a pipeline'));
  }

  handleCopyData(): void {
    /* never asked for */
  }

  private settle(): void {
    const callback = this.callback;
    if (!callback) return;
    this.callback = undefined;
    this.connection?.removeListener('parseComplete', this.onParseComplete);
    // The named statements Postgres parsed exist on the connection from now on, whatever failed after them.
    for (const { name, text } of this.parsing.slice(0, this.parsed)) if (this.connection) this.connection.parsedStatements[name] = text;
    if (this.failure) callback(this.failure);
    else callback(undefined, this.rowsOfEach);
  }
}

/** Sends `statements` in one round trip on `client` (see `Pipeline`); each statement's rows, in order. */
export function pipelined(client: pg.Client, statements: PipelinedStatement[]): Promise<unknown[][]> {
  if (statements.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const pipeline = new Pipeline(statements, (oid) => client.getTypeParser(oid, 'text') as (value: string) => unknown);
    pipeline.callback = (error, rowsOfEach) => (error ? reject(error) : resolve(rowsOfEach!));
    void client.query(pipeline as unknown as pg.Submittable);
  });
}

/**
 * First in a pipeline whose transaction may be lost in a crash without harm (a rate window's hit):
 * its commit does not wait for the WAL to reach the disk (`synchronous_commit` off for this
 * transaction only), so a row every such transaction updates, as a caller's rate window, is locked
 * for microseconds instead of a disk flush. What it wrote is visible at once, as any commit; a
 * crash of Postgres may lose the last ~0.6 s of such commits (three `wal_writer_delay`s).
 */
export const UNFLUSHED_COMMIT: PipelinedStatement = { name: 'unflushed_commit', text: "SELECT set_config('synchronous_commit', 'off', true)" };

/** `pipelined` on the connection of the caller's transaction (its runner, TypeORM's documented `connect()`). */
export async function pipelinedIn(tx: EntityManager, statements: PipelinedStatement[]): Promise<unknown[][]> {
  if (statements.length === 0) return [];
  if (!tx.queryRunner || tx.queryRunner.isReleased) throw new Error("pipelinedIn runs in the caller's transaction");
  return pipelined((await tx.queryRunner.connect()) as pg.Client, statements);
}

/**
 * `pipelined` on a connection of `dataSource`'s pool, outside any transaction: the statements run
 * as one implicit transaction that commits at the Sync (an error rolls back all of them).
 */
export async function pipelinedOnce(dataSource: DataSource, statements: PipelinedStatement[]): Promise<unknown[][]> {
  if (statements.length === 0) return [];
  const runner = dataSource.createQueryRunner();
  try {
    return await pipelined((await runner.connect()) as pg.Client, statements);
  } finally {
    await runner.release();
  }
}
