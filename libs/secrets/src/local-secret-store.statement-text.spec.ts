import { randomBytes, randomUUID } from 'node:crypto';
import * as pg from 'pg';
import { DataSource } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { createDataSource } from '@keyward/persistence';
import { canaryKey, createTestDatabase, TestDatabase } from '@keyward/testing';
import { MasterKeyring } from './envelope';
import { LocalSecretStore } from './local-secret-store';

/**
 * Statement text shows in pg_stat_activity and in Postgres's log of a failing statement; a sealed
 * value or wrapped data key quoted there would outlive `disable`'s crypto-shredding. So the sealed
 * columns, and the digest derived from the data key, travel to Postgres only as bind parameters.
 * Here every query the process sends is captured, text and parameters apart, through each of the
 * store's operations.
 */
describe('LocalSecretStore: sealed values never in statement text', () => {
  const SEALED = ['ciphertext', 'iv', 'auth_tag', 'wrapped_data_key', 'value_digest'] as const;
  type SealedRow = Record<(typeof SEALED)[number], Buffer | string>;
  let db: TestDatabase;
  let dataSource: DataSource;
  let query: jest.SpyInstance;
  let store: LocalSecretStore;
  const naming = { namePrefix: 'keyward', envName: 'test' };
  const keyring = new MasterKeyring({ id: 'mk-text', key: randomBytes(32) });
  const nameOf = (tenantId: string) => `keyward/test/tenants/${tenantId}/pleo/integrated-api-key`;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Before the pool's connections exist: keyward's client sends through the prototype's query as it was then.
    query = jest.spyOn(pg.Client.prototype, 'query');
    dataSource = await createDataSource({ url: db.url, poolSize: 2 }).initialize();
    store = new LocalSecretStore(dataSource, keyring, naming);
  });
  afterAll(async () => {
    query?.mockRestore();
    await dataSource?.destroy();
    await db?.drop();
  });

  /** Every statement sent since the spy began: its text, and its parameters. */
  function sent(): { text: string; values: unknown[] }[] {
    return query.mock.calls.flatMap(([first, second]: unknown[]) => {
      // pg's query(text, values), query({ name, text, values }), or a pipeline of such statements.
      const configs = (typeof first === 'string' ? [{ text: first, values: second }] : ((first as { statements?: unknown[] }).statements ?? [first])) as { text: string; values?: unknown }[];
      return configs.map((config) => ({ text: config.text, values: Array.isArray(config.values) ? (config.values as unknown[]) : [] }));
    });
  }

  /** The forms a value could take in SQL text: hex (bytea's and decode()'s), base64, and as is. */
  function spellings(value: Buffer | string): string[] {
    if (typeof value === 'string') return [value.toLowerCase()];
    return [value.toString('hex'), value.toString('base64'), value.toString('base64url')].map((s) => s.toLowerCase());
  }

  /** Sealed material: every stored version's sealed columns, and any Buffer or digest sent as a parameter (unused seals too). */
  async function sealedMaterial(): Promise<{ stored: SealedRow[]; all: (Buffer | string)[] }> {
    const stored = await db.query<SealedRow>(`SELECT ${SEALED.join(', ')} FROM secret_versions WHERE length(ciphertext) > 0`);
    const asParameters = sent().flatMap(({ values }) => values.filter((v): v is Buffer | string => Buffer.isBuffer(v) || (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v))));
    return { stored, all: [...stored.flatMap((row) => SEALED.map((column) => row[column])), ...asParameters] };
  }

  it("putPending (new, next, retried, refused) and every label move: the sealed columns only in parameters, never in any statement's text", async () => {
    const t = `tenant-${randomBytes(5).toString('hex')}`;
    const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
    const [first, second] = [canaryKey(), canaryKey()];
    await store.putPending(t, v1, ApiKey.fromTrusted(first));
    await store.putPending(t, v2, ApiKey.fromTrusted(second));
    await store.putPending(t, v1, ApiKey.fromTrusted(first)); // a retry: nothing written
    await expect(store.putPending(t, v1, ApiKey.fromTrusted(canaryKey()))).rejects.toMatchObject({ code: 'already_exists' });
    await store.promote(t, v1, null);
    await store.promote(t, v2, v1);
    await store.putPending(t, v3, ApiKey.fromTrusted(canaryKey()));
    await store.retire(t, v3);
    expect((await store.getValue(t, { versionId: v2 })).key.reveal()).toBe(second);
    await store.disable(t, v3);
    await expect(store.putPending(t, v3, ApiKey.fromTrusted(canaryKey()))).rejects.toMatchObject({ code: 'disabled' });
    await store.scheduleDeletion(t, 7);
    await store.restore(t);

    const { stored, all } = await sealedMaterial();
    expect(stored).toHaveLength(2); // v1 and v2; v3 was shredded
    const texts = sent().map(({ text }) => text.toLowerCase());
    // The capture saw this tenant's statements: its secret's name went in their parameters, never in their text.
    expect(sent().some(({ values }) => values.includes(nameOf(t)))).toBe(true);
    expect(texts.filter((text) => text.includes(nameOf(t)))).toEqual([]);
    for (const value of all.filter((v) => v.length >= 12)) {
      for (const spelling of spellings(value)) {
        expect(texts.filter((text) => text.includes(spelling))).toEqual([]);
      }
    }
    for (const key of [first, second]) expect(texts.filter((text) => text.includes(key.toLowerCase()))).toEqual([]);
    // They did reach Postgres: as parameters.
    const params = sent().flatMap(({ values }) => values);
    for (const row of stored) {
      expect(params).toContainEqual(row.ciphertext);
      expect(params).toContainEqual(row.wrapped_data_key);
      expect(params).toContain(row.value_digest);
    }
  });
});
