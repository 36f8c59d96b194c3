import { randomBytes, randomUUID } from 'node:crypto';
import { ApiKey } from '@keyward/key-material';
import { createDataSource } from '@keyward/persistence';
import { canaryKey, captureLogs, CapturedLogs, databaseOfTheBlock } from '@keyward/testing';
import { MasterKeyring } from './envelope';
import { LocalSecretStore } from './local-secret-store';
import { QueryRevocationCheck } from './revocation-check';
import { SecretReader } from './secret-reader';
import { SecretStoreError } from './secret-store';

/**
 * On the local store, a read for use that the cache cannot answer asks the revocation and the
 * version in one statement. It must end exactly as the check followed by the store's read does —
 * the same error, code and message, the same log lines — and a revocation must answer first,
 * whatever is true of the version.
 */
describe('SecretReader on the local store: the revocation check and the read in one statement', () => {
  const block = databaseOfTheBlock(3);
  const nameOf = (tenantId: string) => `keyward/test/tenants/${tenantId}/pleo/integrated-api-key`;
  let store: LocalSecretStore;

  beforeAll(() => {
    store = new LocalSecretStore(block.dataSource, new MasterKeyring({ id: 'mk-reader', key: randomBytes(32) }), { namePrefix: 'keyward', envName: 'test' });
  });

  /** The reader as wired (one statement) and one whose check is not the store's (the check, then the read). */
  function readers(): { joined: SecretReader; apart: SecretReader; joinedLogs: CapturedLogs; apartLogs: CapturedLogs } {
    const [joinedLogs, apartLogs] = [captureLogs('reader'), captureLogs('reader')];
    const check = new QueryRevocationCheck(block.dataSource);
    return {
      joined: new SecretReader(store, block.dataSource, joinedLogs.logger, 0),
      apart: new SecretReader(store, block.dataSource, apartLogs.logger, 0, Date.now, { find: (credentialId, tenantId) => check.find(credentialId, tenantId) }),
      joinedLogs,
      apartLogs,
    };
  }

  const outcome = (read: Promise<ApiKey>) =>
    read.then(
      (key) => ({ key: key.reveal() }),
      (error: SecretStoreError) => ({ code: error.code, message: error.message, transient: error.transient }),
    );
  const logged = (logs: CapturedLogs) => logs.lines().map((line) => ({ ...(JSON.parse(line) as Record<string, unknown>), time: undefined }));
  const revoke = (credentialId: string, tenantId: string) =>
    block.db.query(`INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id) VALUES ($1, $2, 'compromised', 'test', 'c')`, [credentialId, tenantId]);

  const scenarios: [string, string, (t: string, v: string) => Promise<unknown>][] = [
    ['a readable version', 'key', (t, v) => store.putPending(t, v, ApiKey.fromTrusted(canaryKey()))],
    ['a tenant without a secret', 'not_found', async () => undefined],
    ['a secret without that version', 'not_found', (t) => store.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()))],
    ['a secret scheduled for deletion', 'scheduled_for_deletion', async (t, v) => (await store.putPending(t, v, ApiKey.fromTrusted(canaryKey())), await store.scheduleDeletion(t, 7))],
    ['a disabled version', 'disabled', async (t, v) => (await store.putPending(t, v, ApiKey.fromTrusted(canaryKey())), await store.disable(t, v))],
    [
      'a version sealed for another tenant',
      'crypto_failure',
      async (t, v) => {
        await store.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
        await block.db.query(`UPDATE secret_versions SET tenant_id = 'someone-else' WHERE secret_name = $1`, [nameOf(t)]);
      },
    ],
  ];

  it.each(scenarios)('%s: the same answer and log lines as the check and the read apart (%s)', async (_what, expected, arrange) => {
    const [t, v] = [`tenant-${randomBytes(5).toString('hex')}`, randomUUID()];
    await arrange(t, v);
    const { joined, apart, joinedLogs, apartLogs } = readers();
    const answer = await outcome(joined.readForUse(t, v));
    expect('key' in answer ? 'key' : answer.code).toBe(expected);
    expect(answer).toEqual(await outcome(apart.readForUse(t, v)));
    expect(logged(joinedLogs)).toEqual(logged(apartLogs));
  });

  it.each(scenarios)('%s, revoked: refused as revoked before anything about the version', async (_what, _expected, arrange) => {
    const [t, v] = [`tenant-${randomBytes(5).toString('hex')}`, randomUUID()];
    await arrange(t, v);
    await revoke(v, t);
    const { joined, apart, joinedLogs, apartLogs } = readers();
    const answer = await outcome(joined.readForUse(t, v));
    expect(answer).toEqual({ code: 'revoked', message: `Credential ${v} of tenant ${t} is revoked (compromised)`, transient: false });
    expect(answer).toEqual(await outcome(apart.readForUse(t, v)));
    expect(logged(joinedLogs)).toEqual(logged(apartLogs));
  });

  it('fails closed as the revocation check does when Postgres cannot answer', async () => {
    const broken = await createDataSource({ url: block.db.url, poolSize: 1 }).initialize();
    const brokenStore = new LocalSecretStore(broken, new MasterKeyring({ id: 'mk-reader', key: randomBytes(32) }), { namePrefix: 'keyward', envName: 'test' });
    const check = new QueryRevocationCheck(broken);
    const [joinedLogs, apartLogs] = [captureLogs('reader'), captureLogs('reader')];
    const joined = new SecretReader(brokenStore, broken, joinedLogs.logger, 0);
    const apart = new SecretReader(brokenStore, broken, apartLogs.logger, 0, Date.now, { find: (c, t) => check.find(c, t) });
    await broken.destroy();
    const [t, v] = ['tenant-gone', randomUUID()];
    const answer = await outcome(joined.readForUse(t, v));
    expect(answer).toMatchObject({ code: 'unavailable', transient: true, message: expect.stringMatching(new RegExp(`^Could not check revocations for credential ${v} of tenant ${t}`)) });
    expect(answer).toEqual(await outcome(apart.readForUse(t, v)));
    expect(logged(joinedLogs)).toEqual(logged(apartLogs));
  });
});
