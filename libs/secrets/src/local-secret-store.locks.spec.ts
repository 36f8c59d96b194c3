import { randomBytes, randomUUID } from 'node:crypto';
import { QueryRunner } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { canaryKey, databaseOfTheBlock, eventually } from '@keyward/testing';
import { MasterKeyring, sealValue } from './envelope';
import { LocalSecretStore } from './local-secret-store';
import { SecretStoreError } from './secret-store';

/**
 * Every write of the local store waits for the tenant's `secrets` row, then reads and moves labels
 * in a later statement of the same round trip. In READ COMMITTED a statement that waited for a
 * lock keeps the snapshot it started with, so a read inside the locking statement would miss what
 * the lock's holder committed. Here the holder is this test: it takes the row, changes the
 * versions as another writer would, and commits only once the store's write waits behind it.
 */
describe('LocalSecretStore: a write that waited for the tenant sees what the holder committed', () => {
  const block = databaseOfTheBlock(4);
  const keyring = new MasterKeyring({ id: 'mk-locks', key: randomBytes(32) });
  const naming = { namePrefix: 'keyward', envName: 'test' };
  const nameOf = (tenantId: string) => `keyward/test/tenants/${tenantId}/pleo/integrated-api-key`;
  const tenant = () => `tenant-${randomBytes(5).toString('hex')}`;
  const key = (value = canaryKey()) => ApiKey.fromTrusted(value);
  let store: LocalSecretStore;

  beforeAll(() => {
    store = new LocalSecretStore(block.dataSource, keyring, naming);
  });

  /** Another writer's transaction holding the tenant's row (creating it for a new tenant). */
  async function holder(tenantId: string, create = false): Promise<QueryRunner> {
    const runner = block.dataSource.createQueryRunner();
    await runner.startTransaction();
    if (create) await runner.query(`INSERT INTO secrets (name, tenant_id) VALUES ($1, $2)`, [nameOf(tenantId), tenantId]);
    else await runner.query(`SELECT 1 FROM secrets WHERE name = $1 FOR UPDATE`, [nameOf(tenantId)]);
    return runner;
  }

  /** A sealed version written the way putPending writes it. */
  async function storeVersion(db: QueryRunner, tenantId: string, versionId: string, value: string, stages: string[]): Promise<void> {
    const sealed = sealValue(keyring, { tenantId, versionId, secretName: nameOf(tenantId) }, key(value));
    await db.query(
      `INSERT INTO secret_versions (secret_name, version_id, tenant_id, stages, ciphertext, iv, auth_tag, wrapped_data_key, master_key_id, value_digest)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [nameOf(tenantId), versionId, tenantId, stages, sealed.ciphertext, sealed.iv, sealed.authTag, sealed.wrappedDataKey, sealed.masterKeyId, sealed.valueDigest],
    );
  }

  /** Starts `write`, lets the holder commit once `write` waits for the lock, and answers how `write` ended. */
  async function afterTheHolder(held: QueryRunner, write: () => Promise<void>): Promise<SecretStoreError | undefined> {
    try {
      const outcome = write().then(
        () => undefined,
        (error: unknown) => error,
      );
      await eventually(
        async () => (await block.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))[0].n > 0,
        10_000,
        'the write waiting for the tenant',
      );
      await held.commitTransaction();
      const error = await outcome;
      if (error !== undefined && !(error instanceof SecretStoreError)) throw error as Error;
      return error;
    } finally {
      if (held.isTransactionActive) await held.rollbackTransaction();
      await held.release();
    }
  }

  async function labels(tenantId: string): Promise<Record<string, string[]>> {
    return Object.fromEntries((await store.describe(tenantId))!.versions.map((v) => [v.versionId, v.stages]));
  }

  it('putPending moves AWSPENDING off the version the holder had just stored, onto its own', async () => {
    const t = tenant();
    const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    const held = await holder(t);
    await held.query(`UPDATE secret_versions SET stages = '{}' WHERE secret_name = $1`, [nameOf(t)]);
    await storeVersion(held, t, v2, canaryKey(), ['AWSPENDING']);
    expect(await afterTheHolder(held, () => store.putPending(t, v3, key()))).toBeUndefined();
    expect(await labels(t)).toEqual({ [v1]: [], [v2]: [], [v3]: ['AWSPENDING'] });
  });

  it("a new tenant's first two keys at once: the second waits for the first's new row and ends as the one pending", async () => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    const held = await holder(t, true);
    await storeVersion(held, t, v1, canaryKey(), ['AWSPENDING']);
    expect(await afterTheHolder(held, () => store.putPending(t, v2, key()))).toBeUndefined();
    expect(await labels(t)).toEqual({ [v1]: [], [v2]: ['AWSPENDING'] });
  });

  it('putPending of the version the holder stored: the same value is a retry that writes nothing, another value is refused', async () => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    const [value1, value2] = [canaryKey(), canaryKey()];
    await store.putPending(t, randomUUID(), key());
    let held = await holder(t);
    await held.query(`UPDATE secret_versions SET stages = '{}' WHERE secret_name = $1`, [nameOf(t)]);
    await storeVersion(held, t, v1, value1, ['AWSPENDING']);
    expect(await afterTheHolder(held, () => store.putPending(t, v1, key(value1)))).toBeUndefined();
    held = await holder(t);
    await storeVersion(held, t, v2, value2, []);
    expect(await afterTheHolder(held, () => store.putPending(t, v2, key(canaryKey())))).toMatchObject({
      code: 'already_exists',
      message: `Version ${v2} of tenant ${t} already exists with a different value`,
    });
    expect((await labels(t))[v1]).toEqual(['AWSPENDING']);
    expect((await store.getValue(t, { versionId: v2 })).key.reveal()).toBe(value2);
  });

  it('promote after the holder moved AWSCURRENT elsewhere: a conflict naming where it is now, and nothing moved', async () => {
    const t = tenant();
    const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    await store.promote(t, v1, null);
    await store.putPending(t, v2, key());
    await store.putPending(t, v3, key());
    const held = await holder(t);
    // The holder promotes v3 over v1, as a concurrent promotion would.
    await held.query(`UPDATE secret_versions SET stages = CASE WHEN version_id = $2 THEN ARRAY['AWSCURRENT'] ELSE '{}'::text[] END WHERE secret_name = $1 AND version_id IN ($2, $3)`, [
      nameOf(t),
      v3,
      v1,
    ]);
    expect(await afterTheHolder(held, () => store.promote(t, v2, v1))).toMatchObject({ code: 'conflict', message: `AWSCURRENT of tenant ${t} is on ${v3}, not on ${v1}` });
    expect(await labels(t)).toEqual({ [v1]: [], [v2]: [], [v3]: ['AWSCURRENT'] });
  });

  it.each([
    [
      'disabled the target',
      'disabled',
      (held: QueryRunner, t: string, v: string) => held.query(`UPDATE secret_versions SET stages = '{}', disabled_at = now() WHERE secret_name = $1 AND version_id = $2`, [nameOf(t), v]),
    ],
    [
      'scheduled the deletion',
      'scheduled_for_deletion',
      (held: QueryRunner, t: string) => held.query(`UPDATE secrets SET deletion_scheduled_for = now() + interval '7 days' WHERE name = $1`, [nameOf(t)]),
    ],
  ])('promote after the holder %s: refused, nothing moved', async (_what, code, change) => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    await store.promote(t, v1, null);
    await store.putPending(t, v2, key());
    const held = await holder(t);
    await change(held, t, v2);
    expect(await afterTheHolder(held, () => store.promote(t, v2, v1))).toMatchObject({ code });
    expect((await labels(t))[v1]).toEqual(['AWSCURRENT']);
  });

  it.each(['retire', 'disable'] as const)('%s of the version the holder had just stored finds it', async (operation) => {
    const t = tenant();
    const v = randomUUID();
    await store.putPending(t, randomUUID(), key());
    const held = await holder(t);
    await storeVersion(held, t, v, canaryKey(), ['AWSPENDING']);
    expect(await afterTheHolder(held, () => store[operation](t, v))).toBeUndefined();
    const version = (await store.describe(t))!.versions.find((x) => x.versionId === v);
    expect(version).toMatchObject({ stages: [], disabled: operation === 'disable' });
  });
});
