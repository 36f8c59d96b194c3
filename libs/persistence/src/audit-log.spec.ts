import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestDatabase, TestDatabase } from '@keyward/testing';
import { AuditLog } from './audit-log';
import { createDataSource } from './data-source';

describe('AuditLog: an append-only, hash-chained log per tenant', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await createDataSource({ url: db.url, poolSize: 6 }).initialize();
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  const append = (tenantId: string, action: string) =>
    dataSource.transaction((tx) => AuditLog.append(tx, { tenantId, actor: 'service:test', action, credentialId: randomUUID(), last4: 'abcd', correlationId: 'corr-1', details: { n: 1 } }));

  it('orders concurrent writers of one tenant into one unbroken chain', async () => {
    const tenant = `t-${randomUUID()}`;
    await Promise.all(Array.from({ length: 8 }, (_, i) => append(tenant, `step.${i}`)));
    const entries = await AuditLog.list(dataSource.manager, tenant);
    expect(entries.map((e) => e.seq)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    expect(await AuditLog.verify(dataSource.manager, tenant)).toEqual({ ok: true, entries: 8 });
  });

  it('appends entries of several tenants at once, in order, interleaved with single appends and concurrent batches, each chain unbroken', async () => {
    const [a, b] = [`t-${randomUUID()}`, `t-${randomUUID()}`];
    await append(a, 'first');
    const entry = (tenantId: string, action: string) => ({
      tenantId,
      actor: 'service:test',
      action,
      credentialId: randomUUID(),
      last4: 'abcd',
      correlationId: 'corr-1',
      details: { n: 2, scopes: ['x'] },
    });
    // Batches naming the tenants in opposite orders, and single appends, all at once.
    await Promise.all([
      dataSource.transaction((tx) => AuditLog.appendAll(tx, [entry(b, 'b.1'), entry(a, 'a.1'), entry(b, 'b.2')])),
      dataSource.transaction((tx) => AuditLog.appendAll(tx, [entry(a, 'a.2'), entry(b, 'b.3')])),
      append(a, 'single'),
      append(b, 'single'),
    ]);
    for (const [tenant, count] of [
      [a, 4],
      [b, 4],
    ] as const)
      expect(await AuditLog.verify(dataSource.manager, tenant)).toEqual({ ok: true, entries: count });
    const actions = (await AuditLog.list(dataSource.manager, b)).map((e) => e.action).reverse();
    expect(actions.indexOf('b.1')).toBeLessThan(actions.indexOf('b.2'));
  });

  it('chains in Postgres the hash the verification computes, whatever the entry carries: text beyond ASCII, quotes and newlines, a nested seq', async () => {
    const tenant = `t-${randomUUID()}`;
    const odd = {
      tenantId: tenant,
      actor: 'token:bü"ro\n',
      action: 'key.submitted',
      credentialId: null,
      last4: 'ä€😀x',
      correlationId: 'corr-"\\',
      details: { seq: 0, tenantId: `${tenant}","seq":0,"tenantId":"`, note: 'Zürich — 東京', list: ['a', 'b'], empty: null, flag: true, count: 12.5 },
    };
    await dataSource.transaction((tx) => AuditLog.appendAll(tx, [odd, { ...odd, action: 'second' }]));
    await append(tenant, 'third');
    const entries = await AuditLog.list(dataSource.manager, tenant);
    expect(entries.map((e) => [e.seq, e.action, e.actor, e.last4])).toEqual([
      [3, 'third', 'service:test', 'abcd'],
      [2, 'second', odd.actor, odd.last4],
      [1, 'key.submitted', odd.actor, odd.last4],
    ]);
    expect(await AuditLog.verify(dataSource.manager, tenant)).toEqual({ ok: true, entries: 3 });
    expect(await AuditLog.page(dataSource.manager, tenant)).toMatchObject({ ok: true });
  });

  it('verifies incrementally from its checkpoint: a read hashes only what was appended since the last one', async () => {
    const tenant = `t-${randomUUID()}`;
    for (let i = 0; i < 20; i++) await append(tenant, `step.${i}`);
    expect(await AuditLog.verifyIncrementally(dataSource.manager, tenant)).toEqual({ ok: true, entries: 20, checkedEntries: 20, verifiedThroughSeq: 20 });
    expect(await AuditLog.verifyIncrementally(dataSource.manager, tenant)).toEqual({ ok: true, entries: 20, checkedEntries: 1, verifiedThroughSeq: 20 });

    for (let i = 0; i < 3; i++) await append(tenant, `more.${i}`);
    expect(await AuditLog.verifyIncrementally(dataSource.manager, tenant)).toEqual({ ok: true, entries: 23, checkedEntries: 4, verifiedThroughSeq: 23 });

    // The checkpoint's own entry edited in place: the anchor no longer matches.
    await db.query(`BEGIN; SET LOCAL session_replication_role = replica;
      UPDATE audit_log SET details = '{"n": 9}' WHERE tenant_id = '${tenant}' AND seq = 23; COMMIT;`);
    expect(await AuditLog.verifyIncrementally(dataSource.manager, tenant)).toMatchObject({ ok: false, brokenAtSeq: 23 });
    expect(await AuditLog.verify(dataSource.manager, tenant)).toMatchObject({ ok: false, brokenAtSeq: 23 });
  });

  it('pages newest first with a cursor and checks every entry of the page against its neighbours', async () => {
    const tenant = `t-${randomUUID()}`;
    for (let i = 1; i <= 7; i++) await append(tenant, `step.${i}`);
    const first = await AuditLog.page(dataSource.manager, tenant, { limit: 3 });
    expect(first.entries.map((e) => e.seq)).toEqual([7, 6, 5]);
    expect(first).toMatchObject({ nextBeforeSeq: 5, ok: true });
    const second = await AuditLog.page(dataSource.manager, tenant, { limit: 3, beforeSeq: first.nextBeforeSeq! });
    expect(second.entries.map((e) => e.seq)).toEqual([4, 3, 2]);
    const last = await AuditLog.page(dataSource.manager, tenant, { limit: 3, beforeSeq: second.nextBeforeSeq! });
    expect(last.entries.map((e) => e.seq)).toEqual([1]);
    expect(last.nextBeforeSeq).toBeNull();

    // An old entry edited behind the log's back is caught by the page that shows it.
    await db.query(`BEGIN; SET LOCAL session_replication_role = replica;
      UPDATE audit_log SET action = 'nothing.happened' WHERE tenant_id = '${tenant}' AND seq = 3; COMMIT;`);
    expect(await AuditLog.page(dataSource.manager, tenant, { limit: 3, beforeSeq: 5 })).toMatchObject({ ok: false, brokenAtSeq: 3 });
    expect(await AuditLog.page(dataSource.manager, tenant, { limit: 3 })).toMatchObject({ ok: true });
  });

  it('refuses UPDATE and DELETE from the application', async () => {
    const tenant = `t-${randomUUID()}`;
    await append(tenant, 'key.submitted');
    await expect(db.query(`UPDATE audit_log SET action = 'x' WHERE tenant_id = $1`, [tenant])).rejects.toThrow(/append-only/);
    await expect(db.query(`DELETE FROM audit_log WHERE tenant_id = $1`, [tenant])).rejects.toThrow(/append-only/);
  });

  it('detects an entry edited or removed behind its back, and keeps other tenants intact', async () => {
    const edited = `t-${randomUUID()}`;
    const removed = `t-${randomUUID()}`;
    const untouched = `t-${randomUUID()}`;
    for (const tenant of [edited, removed, untouched]) for (const action of ['a', 'b', 'c', 'd']) await append(tenant, action);
    // A superuser bypassing the trigger, as a rogue DBA could.
    await db.query(`BEGIN; SET LOCAL session_replication_role = replica;
      UPDATE audit_log SET details = '{"n": 2}' WHERE tenant_id = '${edited}' AND seq = 3;
      DELETE FROM audit_log WHERE tenant_id = '${removed}' AND seq = 2; COMMIT;`);
    expect(await AuditLog.verify(dataSource.manager, edited)).toEqual({ ok: false, entries: 4, brokenAtSeq: 3 });
    expect(await AuditLog.verify(dataSource.manager, removed)).toEqual({ ok: false, entries: 3, brokenAtSeq: 2 });
    expect(await AuditLog.verify(dataSource.manager, untouched)).toEqual({ ok: true, entries: 4 });
  });
});
