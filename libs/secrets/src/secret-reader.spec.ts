import { randomBytes, randomUUID } from 'node:crypto';
import { ApiKey } from '@keyward/key-material';
import { createDataSource } from '@keyward/persistence';
import { canaryKey, captureLogs, databaseOfTheBlock } from '@keyward/testing';
import { MasterKeyring } from './envelope';
import { LocalSecretStore } from './local-secret-store';
import { SecretReader } from './secret-reader';
import { SecretStoreError } from './secret-store';

/**
 * The read of a key for use checks the credential's revocation before anything else: a revoked
 * credential is refused as revoked whatever is true of its version, and the store is not asked.
 * If the check cannot run, no key is read (fail closed).
 */
describe('SecretReader: the revocation check comes first', () => {
  const block = databaseOfTheBlock(3);
  const nameOf = (tenantId: string) => `keyward/test/tenants/${tenantId}/pleo/integrated-api-key`;
  const keyring = new MasterKeyring({ id: 'mk-reader', key: randomBytes(32) });
  const naming = { namePrefix: 'keyward', envName: 'test' };
  let store: LocalSecretStore;

  beforeAll(() => {
    store = new LocalSecretStore(block.dataSource, keyring, naming);
  });

  const outcome = (read: Promise<ApiKey>) =>
    read.then(
      (key) => ({ key: key.reveal() }),
      (error: SecretStoreError) => ({ code: error.code, message: error.message, transient: error.transient }),
    );
  const messages = (lines: string[]) => lines.map((line) => (JSON.parse(line) as { msg?: string }).msg);
  const revoke = (credentialId: string, tenantId: string) =>
    block.db.query(`INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id) VALUES ($1, $2, 'compromised', 'test', 'c')`, [credentialId, tenantId]);
  const put = (t: string, v: string) => store.putPending(t, v, ApiKey.fromTrusted(canaryKey()));

  const scenarios: [string, string, (t: string, v: string) => Promise<unknown>][] = [
    ['a readable version', 'key', put],
    ['a tenant without a secret', 'not_found', async () => undefined],
    ['a secret without that version', 'not_found', (t) => put(t, randomUUID())],
    ['a secret scheduled for deletion', 'scheduled_for_deletion', async (t, v) => (await put(t, v), await store.scheduleDeletion(t, 7))],
    ['a disabled version', 'disabled', async (t, v) => (await put(t, v), await store.disable(t, v))],
    [
      'a version sealed for another tenant',
      'crypto_failure',
      async (t, v) => {
        await put(t, v);
        await block.db.query(`UPDATE secret_versions SET tenant_id = 'someone-else' WHERE secret_name = $1`, [nameOf(t)]);
      },
    ],
  ];

  it.each(scenarios)('%s, not revoked: the store answers (%s); a refusal is logged by its code', async (_what, expected, arrange) => {
    const [t, v] = [`tenant-${randomBytes(5).toString('hex')}`, randomUUID()];
    await arrange(t, v);
    const logs = captureLogs('reader');
    const answer = await outcome(new SecretReader(store, block.dataSource, logs.logger, 0).readForUse(t, v));
    expect('key' in answer ? 'key' : answer.code).toBe(expected);
    expect(messages(logs.lines())).toEqual('key' in answer ? [] : ['Could not read a credential key for use']);
  });

  it.each(scenarios)('%s, revoked: refused as revoked, the store not asked', async (_what, _expected, arrange) => {
    const [t, v] = [`tenant-${randomBytes(5).toString('hex')}`, randomUUID()];
    await arrange(t, v);
    await revoke(v, t);
    const logs = captureLogs('reader');
    const getValue = jest.spyOn(store, 'getValue');
    try {
      const answer = await outcome(new SecretReader(store, block.dataSource, logs.logger, 0).readForUse(t, v));
      expect(answer).toEqual({ code: 'revoked', message: `Credential ${v} of tenant ${t} is revoked (compromised)`, transient: false });
      expect(getValue).not.toHaveBeenCalled();
      expect(messages(logs.lines())).toEqual(['Refused to read the key of a revoked credential']);
    } finally {
      getValue.mockRestore();
    }
  });

  it('fails closed when Postgres cannot answer the check: unavailable, worth retrying, the store not asked', async () => {
    const broken = await createDataSource({ url: block.db.url, poolSize: 1 }).initialize();
    const getValue = jest.spyOn(store, 'getValue');
    try {
      const reader = new SecretReader(store, broken, captureLogs('reader').logger, 0);
      await broken.destroy();
      const [t, v] = ['tenant-gone', randomUUID()];
      expect(await outcome(reader.readForUse(t, v))).toMatchObject({
        code: 'unavailable',
        transient: true,
        message: expect.stringMatching(new RegExp(`^Could not check revocations for credential ${v} of tenant ${t}`)),
      });
      expect(getValue).not.toHaveBeenCalled();
    } finally {
      getValue.mockRestore();
    }
  });
});
