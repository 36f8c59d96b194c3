import * as pg from 'pg';
import { createTestDatabase, socketWritesDuring, TestDatabase } from '@keyward/testing';
import { pipelined, UNFLUSHED_COMMIT } from './pipelined-statements';

/** Several statements in one round trip with bind parameters (the extended protocol's pipeline). */
describe('pipelined statements', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let observer: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    observer = new pg.Client({ connectionString: db.url });
    await client.connect();
    await observer.connect();
    await client.query('CREATE TABLE pipeline_marks (id uuid PRIMARY KEY, n int NOT NULL, at timestamptz NOT NULL DEFAULT now(), tags text[])');
  });
  afterAll(async () => {
    await client?.end();
    await observer?.end();
    await db?.drop();
  });
  afterEach(async () => {
    await client.query('DELETE FROM pipeline_marks');
  });

  it('sends every statement with one write and answers each one’s rows, in order, with their types', async () => {
    const id = '6f1c1f9e-8a3b-4b8e-9a53-0d6f3c2b1a01';
    const { result, writes } = await socketWritesDuring(() =>
      pipelined(client, [
        { text: 'INSERT INTO pipeline_marks (id, n, tags) VALUES ($1, $2, $3)', values: [id, 7, ['a', 'b,c']] },
        { text: 'SELECT id, n, at, tags FROM pipeline_marks WHERE id = $1', values: [id] },
        { text: 'SELECT count(*)::int AS n FROM pipeline_marks' },
      ]),
    );
    expect(writes).toBe(1);
    const [inserted, [row], [count]] = result as [unknown[], { id: string; n: number; at: Date; tags: string[] }[], { n: number }[]];
    expect(inserted).toEqual([]);
    expect(row).toEqual({ id, n: 7, at: expect.any(Date), tags: ['a', 'b,c'] });
    expect(count).toEqual({ n: 1 });
  });

  it('parses a named statement once per connection: the second pipeline only binds it', async () => {
    const statement = { name: 'pipeline_spec_count', text: 'SELECT count(*)::int AS n FROM pipeline_marks WHERE n > $1' };
    expect(await pipelined(client, [{ ...statement, values: [0] }])).toEqual([[{ n: 0 }]]);
    // Parsed again, Postgres would refuse: prepared statement "pipeline_spec_count" already exists.
    expect(await pipelined(client, [{ text: 'INSERT INTO pipeline_marks (id, n) VALUES (gen_random_uuid(), 5)' }, { ...statement, values: [1] }])).toEqual([[], [{ n: 1 }]]);
    const prepared = await client.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'pipeline_spec_count'");
    expect(prepared.rows).toEqual([{ n: 1 }]);
  });

  it('without a transaction of their own, runs them as one: an error undoes the statements before it and skips those after', async () => {
    const attempt = pipelined(client, [
      { text: 'INSERT INTO pipeline_marks (id, n) VALUES (gen_random_uuid(), $1)', values: [1] },
      { name: 'pipeline_spec_failing', text: 'INSERT INTO pipeline_marks (id, n) VALUES ($1, $2)', values: ['not-a-uuid', 2] },
      { text: 'INSERT INTO pipeline_marks (id, n) VALUES (gen_random_uuid(), $1)', values: [3] },
    ]);
    await expect(attempt).rejects.toMatchObject({ code: '22P02' });
    expect((await client.query('SELECT n FROM pipeline_marks')).rows).toEqual([]);
    // The statement was parsed before its bind failed: it is known, and used again without a new parse.
    expect(await pipelined(client, [{ name: 'pipeline_spec_failing', text: 'INSERT INTO pipeline_marks (id, n) VALUES ($1, $2)', values: ['0b6f3c2b-1a01-4b8e-9a53-6f1c1f9e8a3b', 2] }])).toEqual([[]]);
    expect((await client.query('SELECT n FROM pipeline_marks')).rows).toEqual([{ n: 2 }]);
  });

  it('keeps a transaction it starts open after its round trip, until the caller ends it', async () => {
    await pipelined(client, [{ text: 'START TRANSACTION' }, { text: 'INSERT INTO pipeline_marks (id, n) VALUES (gen_random_uuid(), $1)', values: [9] }]);
    expect((await observer.query('SELECT count(*)::int AS n FROM pipeline_marks')).rows).toEqual([{ n: 0 }]);
    await client.query('ROLLBACK');
    expect((await client.query('SELECT count(*)::int AS n FROM pipeline_marks')).rows).toEqual([{ n: 0 }]);
  });

  it('never puts a value in the statement text Postgres shows other sessions', async () => {
    const canary = 'keyward-canary-pipeline-7c1e';
    await pipelined(client, [{ text: 'SELECT $1::text AS secret, pg_backend_pid() AS pid', values: [canary] }]);
    const { rows } = await observer.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [(client as unknown as { processID: number }).processID]);
    expect(rows[0].query).toContain('$1');
    expect(rows[0].query).not.toContain(canary);
  });

  it('commits unflushed only the implicit transaction UNFLUSHED_COMMIT starts: what it wrote is visible at once, the connection stays durable', async () => {
    const [, [inside], inserted] = await pipelined(client, [
      UNFLUSHED_COMMIT,
      { text: 'SHOW synchronous_commit' },
      { text: 'INSERT INTO pipeline_marks (id, n) VALUES (gen_random_uuid(), $1) RETURNING n', values: [5] },
    ]);
    expect(inside).toEqual({ synchronous_commit: 'off' });
    expect(inserted).toEqual([{ n: 5 }]);
    expect((await observer.query('SELECT n FROM pipeline_marks')).rows).toEqual([{ n: 5 }]);
    // The next transaction on the same connection (a pool hands it to anyone) waits for the disk again.
    expect((await client.query('SHOW synchronous_commit')).rows).toEqual([{ synchronous_commit: 'on' }]);
  });

  it('leaves the client usable after a statement Postgres cannot parse', async () => {
    await expect(pipelined(client, [{ name: 'pipeline_spec_broken', text: 'SELEC 1' }])).rejects.toMatchObject({ code: '42601' });
    expect(await pipelined(client, [{ text: 'SELECT 1 AS one' }])).toEqual([[{ one: 1 }]]);
  });
});
