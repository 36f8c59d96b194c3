import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { createEvent, EventEnvelope } from '@keyward/contracts';
import { currentCorrelation, withCorrelation } from '@keyward/observability';
import { AuditLog, createDataSource, LOCKS, Locks } from '@keyward/persistence';
import { createTestDatabase, eventually, TestDatabase } from '@keyward/testing';
import { PermanentEventError } from './event-errors';
import { Inbox } from './inbox';

const event = (tenantId: string) => createEvent('key.revalidate', { tenantId, correlationId: `corr-${randomUUID()}`, producer: 'monitor' }, { credentialId: randomUUID(), reason: 'manual' });

function gate(): { open: () => void; wait: Promise<void> } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { open, wait };
}

const xid = async (tx: EntityManager) => (await tx.query<{ xid: string }[]>('SELECT txid_current()::text AS xid'))[0].xid;

/** Calls of `Inbox.runOnce` that arrive while the consumer's transactions are busy share one (ADR 0039). */
describe('inbox group commit', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  const consumerNo = { n: 0 };
  /** A consumer of its own per scenario, with `maxInFlight` group transactions at once. */
  const consumer = (maxInFlight: number) => {
    const name = `group-${++consumerNo.n}`;
    Inbox.limitGroupCommit(dataSource, name, { maxInFlight });
    return name;
  };
  const claimed = async (consumerName: string, e: EventEnvelope) => (await db.query('SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2', [consumerName, e.id])).length === 1;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await createDataSource({ url: db.url, poolSize: 8 }).initialize();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  it('one call alone runs in a transaction of its own, and a second delivery is a duplicate', async () => {
    const name = consumer(4);
    const e = event('t-alone');
    const first = await Inbox.runOnce(dataSource, name, e, async (tx) => xid(tx));
    expect(first.duplicate).toBe(false);
    expect(await claimed(name, e)).toBe(true);
    let ranAgain = false;
    expect(await Inbox.runOnce(dataSource, name, e, async () => (ranAgain = true))).toEqual({ duplicate: true });
    expect(ranAgain).toBe(false);
  });

  it('calls that arrive while a transaction is open share the next one and its commit, each with its own result', async () => {
    const name = consumer(1);
    const held = gate();
    const busy = Inbox.runOnce(dataSource, name, event('t-busy'), async (tx) => {
      await held.wait;
      return xid(tx);
    });
    const earlier = event('t-b');
    await Inbox.runOnce(dataSource, name, earlier, async () => 'first time', { groupCommit: false });
    const events = [event('t-c'), event('t-a'), event('t-b'), event('t-a')];
    const waiting = [...events, events[1], earlier].map((e) => Inbox.runOnce(dataSource, name, e, async (tx) => ({ id: e.id, xid: await xid(tx) })));
    held.open();
    const alone = await busy;
    const results = await Promise.all(waiting);

    const ran = results.slice(0, 4).map((r) => (r.duplicate ? undefined : r.result));
    expect(ran.map((r) => r?.id)).toEqual(events.map((e) => e.id));
    const xids = new Set(ran.map((r) => r?.xid));
    expect(xids.size).toBe(1);
    expect(xids.has(alone.duplicate ? undefined : alone.result)).toBe(false);
    // The same event twice in one group, and an event handled before: duplicates.
    expect(results[4]).toEqual({ duplicate: true });
    expect(results[5]).toEqual({ duplicate: true });
    for (const e of events) expect(await claimed(name, e)).toBe(true);
  });

  it('a failing handler rolls back only its own event: the others of its group commit, each with what it would have had alone', async () => {
    const name = consumer(1);
    const held = gate();
    const busy = Inbox.runOnce(dataSource, name, event('t-busy'), () => held.wait);
    const [good, bad, alsoGood] = [event('t-1'), event('t-2'), event('t-3')];
    const runs = new Map<string, number>();
    const work = (e: EventEnvelope) => async (tx: EntityManager) => {
      runs.set(e.id, (runs.get(e.id) ?? 0) + 1);
      await tx.query(`INSERT INTO rate_limit_windows (bucket, window_start, hits) VALUES ($1, now(), 1)`, [`group:${e.id}`]);
      if (e === bad) throw new PermanentEventError('this event can never succeed', 'refused');
      return e.id;
    };
    const outcomes = [good, bad, alsoGood].map((e) =>
      Inbox.runOnce(dataSource, name, e, work(e)).then(
        (r) => r,
        (error: unknown) => error,
      ),
    );
    held.open();
    await busy;
    const [goodResult, badResult, alsoGoodResult] = await Promise.all(outcomes);

    expect(goodResult).toEqual({ duplicate: false, result: good.id });
    expect(alsoGoodResult).toEqual({ duplicate: false, result: alsoGood.id });
    expect(badResult).toBeInstanceOf(PermanentEventError);
    const written = async (e: EventEnvelope) => (await db.query('SELECT 1 FROM rate_limit_windows WHERE bucket = $1', [`group:${e.id}`])).length;
    expect([await written(good), await written(bad), await written(alsoGood)]).toEqual([1, 0, 1]);
    expect([await claimed(name, good), await claimed(name, bad), await claimed(name, alsoGood)]).toEqual([true, false, true]);
    // The group ran up to the failure, then each event alone: a handler may run twice (ADR 0039).
    expect(runs.get(bad.id)).toBe(2);
    // The refused event's inbox row went back with it: a replay once fixed is handled.
    expect(await Inbox.runOnce(dataSource, name, bad, async () => 'replayed')).toEqual({ duplicate: false, result: 'replayed' });
  });

  it('two groups whose handlers lock two tenants that arrived in opposite orders both commit, without a deadlock', async () => {
    const name = consumer(2);
    const [first, second] = [gate(), gate()];
    const busy = [Inbox.runOnce(dataSource, name, event('t-x'), () => first.wait), Inbox.runOnce(dataSource, name, event('t-y'), () => second.wait)];
    const runs = new Map<string, number>();
    const holdingA = gate();
    const release = gate();
    const work = (e: EventEnvelope) => async (tx: EntityManager) => {
      runs.set(e.id, (runs.get(e.id) ?? 0) + 1);
      await Locks.hold(tx, LOCKS.audit(e.tenantId));
      if (e.tenantId === 't-a' && runs.size === 1) {
        holdingA.open();
        await release.wait;
      }
      return xid(tx);
    };
    const [a1, b1] = [event('t-a'), event('t-b')];
    const group1 = [a1, b1].map((e) => Inbox.runOnce(dataSource, name, e, work(e)));
    first.open();
    await holdingA.wait;
    // The second group arrives the other way round; it waits for the first one's locks.
    const [b2, a2] = [event('t-b'), event('t-a')];
    const group2 = [b2, a2].map((e) => Inbox.runOnce(dataSource, name, e, work(e)));
    second.open();
    await eventually(async () => {
      const [{ n }] = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted`,
      );
      return n > 0;
    });
    release.open();
    const [r1, r2] = await Promise.all([Promise.all(group1), Promise.all(group2)]);
    await Promise.all(busy);

    const xids = (results: { duplicate: boolean; result?: string }[]) => new Set(results.map((r) => r.result));
    expect(xids(r1).size).toBe(1);
    expect(xids(r2).size).toBe(1);
    // Each handler ran once: no group fell back to one event at a time.
    expect([...runs.values()]).toEqual([1, 1, 1, 1]);
  });

  it("holds each event's lock for the whole group transaction, and runs each handler in its caller's context", async () => {
    const name = consumer(1);
    const held = gate();
    const busy = Inbox.runOnce(dataSource, name, event('t-busy'), () => held.wait);
    const tenants = ['t-lock-b', 't-lock-a'];
    const outcomes = tenants.map((tenantId) =>
      withCorrelation({ correlationId: `caller-${tenantId}` }, () =>
        Inbox.runOnce(
          dataSource,
          name,
          event(tenantId),
          async () => {
            // Seen from another connection while the group runs: both tenants' locks are taken.
            const free = await Promise.all(
              tenants.map(async (t) => {
                const lock = LOCKS.currentKey(t);
                return (await dataSource.query<{ free: boolean }[]>('SELECT pg_try_advisory_xact_lock(hashtextextended($1, $2)) AS free', [lock.name, lock.namespace]))[0].free;
              }),
            );
            return { free, correlationId: currentCorrelation()?.correlationId };
          },
          { lock: LOCKS.currentKey(tenantId) },
        ),
      ),
    );
    held.open();
    await busy;
    const results = await Promise.all(outcomes);
    expect(results.map((r) => (r.duplicate ? undefined : r.result))).toEqual([
      { free: [false, false], correlationId: 'caller-t-lock-b' },
      { free: [false, false], correlationId: 'caller-t-lock-a' },
    ]);
  });

  it('writes the events and audit entries of a whole group together, each tenant’s chain intact', async () => {
    const name = consumer(1);
    const held = gate();
    const busy = Inbox.runOnce(dataSource, name, event('t-busy'), () => held.wait);
    const tenants = ['t-audit-b', 't-audit-a', 't-audit-b'];
    await dataSource.transaction((tx) => AuditLog.append(tx, { tenantId: 't-audit-b', actor: 'spec', action: 'before' }));
    const events = tenants.map(event);
    const outcomes = events.map((e, i) =>
      Inbox.runOnce(dataSource, name, e, async (_tx, effects) => {
        effects.publish(createEvent('key.revalidate', { tenantId: e.tenantId, correlationId: e.correlationId, producer: 'validator' }, { credentialId: randomUUID(), reason: 'manual' }));
        effects.audit({ tenantId: e.tenantId, actor: 'spec', action: `in-group-${i}` });
      }),
    );
    held.open();
    await busy;
    await Promise.all(outcomes);

    for (const tenantId of ['t-audit-a', 't-audit-b']) expect((await dataSource.transaction((tx) => AuditLog.verify(tx, tenantId))).ok).toBe(true);
    const actions = await db.query<{ action: string }>(`SELECT action FROM audit_log WHERE tenant_id = 't-audit-b' ORDER BY seq`);
    expect(actions.map((a) => a.action)).toEqual(['before', 'in-group-0', 'in-group-2']);
    const staged = await db.query('SELECT 1 FROM outbox WHERE tenant_id = ANY($1)', [['t-audit-a', 't-audit-b']]);
    expect(staged).toHaveLength(3);
  });
  it('inside a runBatch scope, runOnce joins the batch and its effects are written when the batch commits', async () => {
    const name = consumer(4);
    const events = [event('t-batch-b'), event('t-batch-a')];
    const xids = await Inbox.runBatch(dataSource, name, events, () =>
      Promise.all(
        events.map((e) =>
          Inbox.runOnce(dataSource, name, e, async (tx, effects) => {
            effects.audit({ tenantId: e.tenantId, actor: 'spec', action: 'in-batch' });
            return xid(tx);
          }),
        ),
      ),
    );
    expect(new Set(xids.map((r) => (r.duplicate ? undefined : r.result))).size).toBe(1);
    for (const tenantId of ['t-batch-a', 't-batch-b']) expect(await AuditLog.verify(dataSource.manager, tenantId)).toEqual({ ok: true, entries: 1 });
  });

  describe("a handler's read with the claim and its writes with the effects", () => {
    beforeAll(async () => {
      await db.query('CREATE TABLE spec_marks (tenant_id text NOT NULL, n int NOT NULL)');
    });
    /** How many marks the tenant has, as a read to send with the claim. */
    const marks = (tenantId: string) => ({ name: 'spec_marks_count', text: 'SELECT count(*)::int AS n FROM spec_marks WHERE tenant_id = $1', values: [tenantId] });
    const mark = (tenantId: string, n: number) => ({ text: 'INSERT INTO spec_marks (tenant_id, n) VALUES ($1, $2)', values: [tenantId, n] });

    it('alone: the read arrives with the claim, the write commits with the event, and neither costs a round trip of its own', async () => {
      const name = consumer(4);
      await db.query(`INSERT INTO spec_marks VALUES ('t-read-alone', 1)`);
      const e = event('t-read-alone');
      const result = await Inbox.runOnce(
        dataSource,
        name,
        e,
        async (_tx, effects, read) => {
          effects.write(mark(e.tenantId, 2));
          return read;
        },
        { read: marks(e.tenantId), groupCommit: false },
      );
      expect(result).toEqual({ duplicate: false, result: [{ n: 1 }] });
      expect(await db.query(`SELECT n FROM spec_marks WHERE tenant_id = 't-read-alone' ORDER BY n`)).toEqual([{ n: 1 }, { n: 2 }]);
    });

    it('in a group: a later event of the same tenant reads after the earlier one’s writes, all in the group’s one transaction', async () => {
      const name = consumer(1);
      const held = gate();
      const busy = Inbox.runOnce(dataSource, name, event('t-busy'), () => held.wait);
      const [first, second, other] = [event('t-read-group'), event('t-read-group'), event('t-read-other')];
      const seen: Record<string, unknown> = {};
      const outcomes = [first, second, other].map((e) =>
        Inbox.runOnce(
          dataSource,
          name,
          e,
          async (tx, effects, read) => {
            seen[e.id] = read;
            effects.write(mark(e.tenantId, 1));
            return xid(tx);
          },
          { read: marks(e.tenantId) },
        ),
      );
      held.open();
      await busy;
      const results = await Promise.all(outcomes);
      expect(new Set(results.map((r) => (r.duplicate ? undefined : r.result))).size).toBe(1);
      // The second event of the tenant saw the first one's write, as if it had run after it alone.
      expect(seen[first.id]).toEqual([{ n: 0 }]);
      expect(seen[second.id]).toEqual([{ n: 1 }]);
      expect(seen[other.id]).toEqual([{ n: 0 }]);
      const counts = await db.query('SELECT tenant_id, count(*)::int AS n FROM spec_marks WHERE tenant_id = ANY ($1) GROUP BY tenant_id ORDER BY tenant_id', [['t-read-group', 't-read-other']]);
      expect(counts).toEqual([
        { tenant_id: 't-read-group', n: 2 },
        { tenant_id: 't-read-other', n: 1 },
      ]);
    });

    it('a failing handler’s writes go with its rollback; the others of its group still commit theirs', async () => {
      const name = consumer(1);
      const held = gate();
      const busy = Inbox.runOnce(dataSource, name, event('t-busy'), () => held.wait);
      const [kept, failing] = [event('t-write-kept'), event('t-write-fails')];
      const outcomes = [kept, failing].map((e) =>
        Inbox.runOnce(dataSource, name, e, async (_tx, effects) => {
          effects.write(mark(e.tenantId, 1));
          if (e === failing) throw new PermanentEventError('refused', 'spec_refusal');
        }),
      );
      held.open();
      await busy;
      expect((await Promise.allSettled(outcomes)).map((o) => o.status)).toEqual(['fulfilled', 'rejected']);
      const counts = await db.query('SELECT tenant_id, count(*)::int AS n FROM spec_marks WHERE tenant_id = ANY ($1) GROUP BY tenant_id', [['t-write-kept', 't-write-fails']]);
      expect(counts).toEqual([{ tenant_id: 't-write-kept', n: 1 }]);
      expect(await claimed(name, failing)).toBe(false);
    });
  });
});
