import { DataSource } from 'typeorm';
import { createTestDatabase, eventually, socketWritesDuring, TestDatabase } from '@keyward/testing';
import { createDataSource, pgPool } from './data-source';
import { inTransactionStartedWith, KeywardClient, startTransactionWithEach } from './keyward-client';
import { pipelinedIn } from './pipelined-statements';

/** The round trips made while `work` runs: the socket writes (pg sends each query, a pipeline too, with one). */
async function roundTrips<T>(work: () => Promise<T>): Promise<{ result: T; roundTrips: number }> {
  const { result, writes } = await socketWritesDuring(work);
  return { result, roundTrips: writes };
}

/** A transaction opened by TypeORM whose first statement rides with its start (ADR 0036). */
describe('starting a transaction with its first statement', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await createDataSource({ url: db.url, poolSize: 3 }).initialize();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  it('sends the start and the statement as one query, and TypeORM knows the transaction is open', async () => {
    const runner = dataSource.createQueryRunner();
    try {
      const [{ pid }] = (await runner.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
      const [rows] = await startTransactionWithEach(runner, ['SELECT 42 AS answer']);
      expect(rows).toEqual([{ answer: 42 }]);
      expect(runner.isTransactionActive).toBe(true);
      // What that backend was last sent, seen from another connection of the pool.
      const [{ query }] = await dataSource.query<{ query: string }[]>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid]);
      expect(query).toBe('START TRANSACTION; SELECT 42 AS answer');
      // A nested transaction is a savepoint: rolling it back keeps the outer transaction.
      await runner.query('CREATE TEMP TABLE marks (n int)');
      await runner.manager.transaction(async (inner) => void (await inner.query('INSERT INTO marks VALUES (1)'))).catch(() => undefined);
      await runner.manager
        .transaction(async (inner) => {
          await inner.query('INSERT INTO marks VALUES (2)');
          throw new Error('rolled back');
        })
        .catch(() => undefined);
      expect(await runner.query('SELECT n FROM marks ORDER BY n')).toEqual([{ n: 1 }]);
      await runner.rollbackTransaction();
    } finally {
      await runner.release();
    }
  });

  it('sends statements in one round trip, each with its own snapshot: a read after a lock sees what the holder committed', async () => {
    await dataSource.query('CREATE TABLE round_trip_marks (n int)');
    const lock = "SELECT pg_advisory_xact_lock(hashtextextended('spec-round-trip', 0))";
    const holder = dataSource.createQueryRunner();
    await holder.startTransaction();
    await holder.query(lock);
    await holder.query('INSERT INTO round_trip_marks VALUES (1)');
    // Both wait for the holder: two statements in one round trip, and the same as one statement.
    const twoStatements = dataSource.transaction((tx) => pipelinedIn(tx, [{ text: lock }, { text: 'SELECT count(*)::int AS n FROM round_trip_marks' }]));
    const oneStatement = dataSource.transaction((tx) => pipelinedIn(tx, [{ text: `WITH l AS MATERIALIZED (${lock}) SELECT count(*)::int AS n FROM round_trip_marks, (SELECT count(*) FROM l) held` }]));
    await new Promise((r) => setTimeout(r, 200));
    await holder.commitTransaction();
    await holder.release();
    expect((await twoStatements)[1]).toEqual([{ n: 1 }]);
    // The single statement took its snapshot before the wait: it misses the commit.
    expect((await oneStatement)[0]).toEqual([{ n: 0 }]);
  });

  it("sends several statements with the start in one round trip and answers each one's rows; one after a lock sees what the holder committed", async () => {
    await dataSource.query('CREATE TABLE start_marks (n int)');
    const lock = "SELECT pg_advisory_xact_lock(hashtextextended('spec-start-each', 0))";
    const holder = dataSource.createQueryRunner();
    await holder.startTransaction();
    await holder.query(lock);
    await holder.query('INSERT INTO start_marks VALUES (1)');
    const runner = dataSource.createQueryRunner();
    try {
      const [{ pid }] = (await runner.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
      const started = startTransactionWithEach(runner, [lock, 'SELECT count(*)::int AS n FROM start_marks', 'SELECT 7 AS seven']);
      // The whole round trip waits for the lock: what that backend was sent, seen from another connection.
      const query = await eventually(
        async () => (await dataSource.query<{ query: string }[]>(`SELECT query FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`, [pid]))[0]?.query,
        10_000,
        'the start waiting for the lock',
      );
      expect(query).toBe(`START TRANSACTION; ${lock};\nSELECT count(*)::int AS n FROM start_marks;\nSELECT 7 AS seven`);
      await holder.commitTransaction();
      expect(await started).toEqual([[{ pg_advisory_xact_lock: '' }], [{ n: 1 }], [{ seven: 7 }]]);
      expect(runner.isTransactionActive).toBe(true);
      await runner.rollbackTransaction();
      // Its existing callers keep their answer: the first statement's rows, whatever rides after it.
      expect((await startTransactionWithEach(runner, ['SELECT 1 AS one; SELECT 2 AS two']))[0]).toEqual([{ one: 1 }]);
      await runner.rollbackTransaction();
    } finally {
      if (holder.isTransactionActive) await holder.rollbackTransaction();
      await holder.release();
      await runner.release();
    }
  });

  it('sends statements with values to bind with the start as one pipeline: one round trip, values never in the text, TypeORM knows it is open', async () => {
    const canary = 'keyward-canary-start-3d9a';
    const runner = dataSource.createQueryRunner();
    try {
      const [{ pid }] = (await runner.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];
      const { result, roundTrips: sent } = await roundTrips(() =>
        startTransactionWithEach(runner, ["SELECT 'literal' AS kind", { name: 'spec_start_bound', text: 'SELECT $1::text AS secret, $2::int + 1 AS n', values: [canary, 41] }]),
      );
      expect(sent).toBe(1);
      expect(result).toEqual([[{ kind: 'literal' }], [{ secret: canary, n: 42 }]]);
      expect(runner.isTransactionActive).toBe(true);
      const [{ query }] = await dataSource.query<{ query: string }[]>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid]);
      expect(query).not.toContain(canary);
      await runner.rollbackTransaction();
      // The same statement again: bound to the statement prepared the first time.
      expect(await startTransactionWithEach(runner, [{ name: 'spec_start_bound', text: 'SELECT $1::text AS secret, $2::int + 1 AS n', values: ['x', 1] }])).toEqual([[{ secret: 'x', n: 2 }]]);
      await runner.rollbackTransaction();
    } finally {
      await runner.release();
    }
  });

  it('rolls back cleanly when the statement fails, and the connection is usable again', async () => {
    const runner = dataSource.createQueryRunner();
    try {
      await expect(startTransactionWithEach(runner, ['SELECT 1/0'])).rejects.toThrow(/division by zero/);
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      expect(await runner.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await runner.release();
    }
  });

  describe('statements that ride with the commit', () => {
    beforeAll(async () => {
      await dataSource.query('CREATE TABLE commit_marks (n int PRIMARY KEY)');
    });
    afterEach(async () => {
      await dataSource.query('DELETE FROM commit_marks');
    });

    it('sends them, with their values as parameters, in the COMMIT’s round trip, and they commit with the transaction', async () => {
      const insert = { text: 'INSERT INTO commit_marks VALUES ($1)', values: [2] };
      const { result, roundTrips: sent } = await roundTrips(() =>
        inTransactionStartedWith<{ one: number }, number>(dataSource, 'SELECT 1 AS one', async (tx, [{ one }]) => {
          await tx.query('INSERT INTO commit_marks VALUES ($1)', [one]);
          return { result: one, atCommit: [insert] };
        }),
      );
      expect(result).toEqual({ result: 1 });
      // The start with its statement, the insert, and the commit with what rides with it.
      expect(sent).toBe(3);
      expect(await dataSource.query('SELECT n FROM commit_marks ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    });

    it('commits nothing when one of them fails, reports its error, and hands the pool a clean connection', async () => {
      const attempt = inTransactionStartedWith<{ one: number }, number>(dataSource, 'SELECT 1 AS one', async (tx) => {
        await tx.query('INSERT INTO commit_marks VALUES (1)');
        return { result: 1, atCommit: [{ text: 'INSERT INTO commit_marks VALUES ($1)', values: [1] }] };
      });
      await expect(attempt).rejects.toMatchObject({ code: '23505' });
      expect(await dataSource.query('SELECT n FROM commit_marks')).toEqual([]);
      // Every connection of the pool (3) commits next: none is left in a failed transaction or with statements waiting to ride.
      const runners = [0, 1, 2].map(() => dataSource.createQueryRunner());
      try {
        for (const [i, runner] of runners.entries()) {
          await runner.startTransaction();
          await runner.query('INSERT INTO commit_marks VALUES ($1)', [10 + i]);
          await runner.commitTransaction();
        }
      } finally {
        for (const runner of runners) await runner.release();
      }
      expect(await dataSource.query('SELECT n FROM commit_marks ORDER BY n')).toEqual([{ n: 10 }, { n: 11 }, { n: 12 }]);
    });

    it('drops them when the transaction is rolled back instead', async () => {
      const runner = dataSource.createQueryRunner();
      try {
        await runner.startTransaction();
        const client = (await runner.connect()) as KeywardClient;
        client.rideWithCommit([{ text: 'INSERT INTO commit_marks VALUES ($1)', values: [3] }]);
        await runner.rollbackTransaction();
        await runner.startTransaction();
        await runner.commitTransaction();
        expect(await dataSource.query('SELECT n FROM commit_marks')).toEqual([]);
      } finally {
        await runner.release();
      }
    });
  });

  it('gives the pool TypeORM runs on to code that needs pg itself', async () => {
    const pool = pgPool(dataSource)!;
    const { rows } = await pool.query({ name: 'spec_answer', text: 'SELECT $1::int AS answer', values: [7] });
    expect(rows).toEqual([{ answer: 7 }]);
    expect(pool.totalCount).toBeLessThanOrEqual(3);
  });
});
