import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { DataSource } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { createDataSource } from '@keyward/persistence';
import { canaryKey, captureLogs, createTestDatabase, testConfig, TestDatabase } from '@keyward/testing';
import { MasterKeyring } from './envelope';
import { LocalSecretStore } from './local-secret-store';
import { resolveMasterKeyring } from './master-key';
import { rotateMasterKey } from './master-key-rotation';
import { SecretStoreError } from './secret-store';

const naming = { namePrefix: 'keyward', envName: 'test' };
const nameOf = (tenantId: string) => `keyward/test/tenants/${tenantId}/pleo/integrated-api-key`;
const tenant = () => `tenant-${randomBytes(5).toString('hex')}`;
const masterKey = (id: string) => ({ id, key: randomBytes(32) });

describe('LocalSecretStore: sealing', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  async function failure(promise: Promise<unknown>): Promise<SecretStoreError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SecretStoreError);
    return error as SecretStoreError;
  }

  it('keeps no plaintext in the row: ciphertext, nonce, tag and a wrapped data key under a named master key', async () => {
    const store = new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-a')), naming);
    const t = tenant();
    const v = randomUUID();
    const value = canaryKey();
    await store.putPending(t, v, ApiKey.fromTrusted(value));
    const [row] = await db.query<Record<string, Buffer | string>>(`SELECT * FROM secret_versions WHERE version_id = $1`, [v]);
    expect(row.master_key_id).toBe('mk-a');
    expect((row.wrapped_data_key as Buffer).length).toBe(60);
    expect(JSON.stringify(row)).not.toContain(value);
    expect(Buffer.concat(Object.values(row).filter((v): v is Buffer => Buffer.isBuffer(v))).includes(Buffer.from(value))).toBe(false);
  });

  it('a refused write changes nothing: the same version id with another value leaves a scheduled deletion scheduled', async () => {
    const store = new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-a')), naming);
    const t = tenant();
    const v = randomUUID();
    await store.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    await store.promote(t, v, null);
    await store.scheduleDeletion(t, 7);
    const before = await db.query(`SELECT s.deletion_scheduled_for, v.stages, v.ciphertext FROM secrets s JOIN secret_versions v ON v.secret_name = s.name WHERE s.tenant_id = $1`, [t]);
    expect((await failure(store.putPending(t, v, ApiKey.fromTrusted(canaryKey('other'))))).code).toBe('already_exists');
    expect(await db.query(`SELECT s.deletion_scheduled_for, v.stages, v.ciphertext FROM secrets s JOIN secret_versions v ON v.secret_name = s.name WHERE s.tenant_id = $1`, [t])).toEqual(before);
    expect((await store.describe(t))?.deletionScheduledFor).toBeInstanceOf(Date);
  });

  it('a sealed row copied to another tenant fails to open with crypto_failure', async () => {
    const store = new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-a')), naming);
    const [victim, attacker] = [tenant(), tenant()];
    const v = randomUUID();
    const value = canaryKey();
    await store.putPending(victim, v, ApiKey.fromTrusted(value));
    await store.putPending(attacker, randomUUID(), ApiKey.fromTrusted(canaryKey()));
    await db.query(
      `INSERT INTO secret_versions (secret_name, version_id, tenant_id, stages, ciphertext, iv, auth_tag, wrapped_data_key, master_key_id, value_digest)
       SELECT $2, version_id, $3, '{}', ciphertext, iv, auth_tag, wrapped_data_key, master_key_id, value_digest FROM secret_versions WHERE version_id = $1`,
      [v, nameOf(attacker), attacker],
    );
    const error = await failure(store.getValue(attacker, { versionId: v }));
    expect(error.code).toBe('crypto_failure');
    expect(error.message).toMatch(/cannot be opened/);
    expect(`${error.message}${error.stack}${inspect(error)}`).not.toContain(value);
  });

  it.each(['ciphertext', 'iv', 'auth_tag', 'wrapped_data_key'])('one altered byte of %s fails with crypto_failure', async (column) => {
    const store = new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-a')), naming);
    const t = tenant();
    const v = randomUUID();
    await store.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    // Flip the lowest bit of the first byte.
    await db.query(`UPDATE secret_versions SET ${column} = set_byte(${column}, 0, get_byte(${column}, 0) # 1) WHERE version_id = $1`, [v]);
    expect((await failure(store.getValue(t, { versionId: v }))).code).toBe('crypto_failure');
  });

  it('a row under a master key that is not in the keyring fails clearly', async () => {
    const t = tenant();
    const v = randomUUID();
    await new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-old')), naming).putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    const error = await failure(new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-new')), naming).getValue(t, { versionId: v }));
    expect(error.code).toBe('crypto_failure');
    expect(error.message).toContain('mk-old');
  });

  it('disable erases the sealed value (crypto-shredding) and keeps the row', async () => {
    const store = new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-a')), naming);
    const t = tenant();
    const v = randomUUID();
    await store.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    await store.disable(t, v);
    const [row] = await db.query<{ ciphertext: Buffer; wrapped_data_key: Buffer; disabled_at: Date }>(`SELECT * FROM secret_versions WHERE version_id = $1`, [v]);
    expect([row.ciphertext.length, row.wrapped_data_key.length]).toEqual([0, 0]);
    expect(row.disabled_at).toBeInstanceOf(Date);
  });

  it('purges a secret once its recovery window has passed, and only then', async () => {
    const store = new LocalSecretStore(dataSource, new MasterKeyring(masterKey('mk-a')), naming);
    const [gone, waiting] = [tenant(), tenant()];
    for (const t of [gone, waiting]) {
      await store.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()));
      await store.scheduleDeletion(t, 7);
    }
    expect(await store.purgeExpired()).not.toContain(waiting);
    await db.query(`UPDATE secrets SET deletion_scheduled_for = now() - interval '1 second' WHERE tenant_id = $1`, [gone]);
    expect(await store.purgeExpired()).toEqual([gone]);
    expect(await store.describe(gone)).toBeNull();
    expect(await db.query(`SELECT 1 FROM secret_versions WHERE tenant_id = $1`, [gone])).toHaveLength(0);
    expect((await store.describe(waiting))?.deletionScheduledFor).toBeInstanceOf(Date);
  });

  it('master-key rotation re-wraps every data key without touching ciphertexts; the old key can then go', async () => {
    // A database of its own: rotation walks every row.
    const own = await createTestDatabase();
    const ownSource = await createDataSource({ url: own.url, poolSize: 2 }).initialize();
    try {
      const [oldKey, newKey] = [masterKey('mk-2024'), masterKey('mk-2025')];
      const before = new LocalSecretStore(ownSource, new MasterKeyring(oldKey), naming);
      const written: { t: string; v: string; value: string }[] = [];
      for (let i = 0; i < 5; i++) {
        const entry = { t: tenant(), v: randomUUID(), value: canaryKey() };
        await before.putPending(entry.t, entry.v, ApiKey.fromTrusted(entry.value));
        written.push(entry);
      }
      await before.disable(written[4].t, written[4].v);
      const ciphertexts = await own.query<{ version_id: string; ciphertext: Buffer; iv: Buffer; auth_tag: Buffer }>(
        `SELECT version_id, ciphertext, iv, auth_tag FROM secret_versions ORDER BY version_id`,
      );

      const keyring = new MasterKeyring(newKey, [oldKey]);
      const result = await rotateMasterKey(ownSource, keyring, { batchSize: 2 });
      expect(result).toEqual({ rewrapped: 4, remainingByMasterKey: { 'mk-2025': 5 } });
      expect(await own.query(`SELECT version_id, ciphertext, iv, auth_tag FROM secret_versions ORDER BY version_id`)).toEqual(ciphertexts);
      expect((await rotateMasterKey(ownSource, keyring)).rewrapped).toBe(0); // repeatable

      // Readable with the new key alone.
      const after = new LocalSecretStore(ownSource, new MasterKeyring(newKey), naming);
      for (const { t, v, value } of written.slice(0, 4)) expect((await after.getValue(t, { versionId: v })).key.reveal()).toBe(value);
    } finally {
      await ownSource.destroy();
      await own.drop();
    }
  });
});

describe('master key resolution', () => {
  const base = () => testConfig('intake', { databaseUrl: 'postgres://postgres@127.0.0.1:5432/unused', prefix: 'unused' });

  it('in development/test without KEYWARD_MASTER_KEY generates one into a private file and says so', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'keyward-mk-')), '.keyward', 'master.key');
    const config = base();
    config.secrets.masterKey = undefined;
    const logs = captureLogs();
    const first = resolveMasterKeyring(config, logs.logger, file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(logs.text()).toMatch(/Generated a development master key/);
    expect(logs.text()).not.toContain(first.current.key.toString('base64'));
    const second = resolveMasterKeyring(config, undefined, file);
    expect(second.current.key.equals(first.current.key)).toBe(true);
    expect(readFileSync(file, 'utf8')).toMatch(/^mk-[0-9a-f]{12}:/);
  });

  it('outside development and test it refuses to start without KEYWARD_MASTER_KEY', () => {
    const config = { ...base(), nodeEnv: 'production' as const };
    config.secrets = { ...config.secrets, masterKey: undefined };
    expect(() => resolveMasterKeyring(config, undefined, '/nonexistent/never-written')).toThrow(/KEYWARD_MASTER_KEY is required/);
  });

  it('uses the configured key and the keyring of retired keys', () => {
    const config = base();
    config.secrets.keyring = [masterKey('mk-retired')];
    const keyring = resolveMasterKeyring(config);
    expect(keyring.current).toBe(config.secrets.masterKey);
    expect(keyring.ids).toContain('mk-retired');
  });

  it('refuses one id for two different keys instead of silently dropping one', () => {
    const [a, b] = [randomBytes(32), randomBytes(32)];
    expect(() => new MasterKeyring({ id: 'prod', key: a }, [{ id: 'prod', key: b }])).toThrow(/names two different keys/);
    // The current key listed again in the keyring is the same key: fine.
    expect(new MasterKeyring({ id: 'prod', key: a }, [{ id: 'prod', key: Buffer.from(a) }]).ids).toEqual(['prod']);
  });
});
