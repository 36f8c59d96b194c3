import { randomBytes, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { DataSource } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { createDataSource } from '@keyward/persistence';
import { canaryKey, captureLogs, CapturedLogs, createTestDatabase, EMULATOR_CREDENTIALS, SecretsManagerEmulator, TestDatabase } from '@keyward/testing';
import { AwsSecretStore } from './aws-secret-store';
import { MasterKeyring } from './envelope';
import { LocalSecretStore } from './local-secret-store';
import { CacheInvalidatingSecretStore, SecretReader } from './secret-reader';
import { SecretStore, SecretStoreError } from './secret-store';

/**
 * One suite, every backend: the local sealed store on this file's own database, the aws store
 * against the in-process Secrets Manager emulator, and — when KEYWARD_TEST_SM_ENDPOINT is set —
 * the aws store against LocalStack or moto at that address.
 */
interface Backend {
  name: string;
  create(): Promise<{ store: SecretStore; close: () => Promise<void> }>;
}

let db: TestDatabase;
let dataSource: DataSource;
let emulator: SecretsManagerEmulator;

beforeAll(async () => {
  db = await createTestDatabase();
  dataSource = await createDataSource({ url: db.url, poolSize: 6 }).initialize();
  emulator = await SecretsManagerEmulator.start();
});

afterAll(async () => {
  await emulator?.stop();
  await dataSource?.destroy();
  await db?.drop();
});

function awsStore(endpoint: string, envName: string, credentials = { accessKeyId: 'test', secretAccessKey: 'test' }): AwsSecretStore {
  return new AwsSecretStore({
    region: 'eu-west-1',
    endpoint,
    maxAttempts: 3,
    naming: { namePrefix: 'keyward', envName },
    credentials,
    retryBaseDelayMs: 1,
  });
}

const backends: Backend[] = [
  {
    name: 'local',
    create: async () => ({
      store: new LocalSecretStore(dataSource, new MasterKeyring({ id: 'mk-test', key: randomBytes(32) }), { namePrefix: 'keyward', envName: 'test' }),
      close: async () => undefined,
    }),
  },
  {
    name: 'aws (emulator)',
    create: async () => {
      // One store doing every service's operations: the store's contract, not IAM (secret-access.spec.ts).
      const store = awsStore(emulator.endpoint, 'test', EMULATOR_CREDENTIALS.unrestricted);
      return { store, close: async () => store.destroy() };
    },
  },
];
if (process.env.KEYWARD_TEST_SM_ENDPOINT) {
  backends.push({
    name: `aws (${process.env.KEYWARD_TEST_SM_ENDPOINT})`,
    create: async () => {
      // A run of its own under the shared endpoint, so reruns never meet old secrets.
      const store = awsStore(process.env.KEYWARD_TEST_SM_ENDPOINT!, `t${randomBytes(4).toString('hex')}`);
      return { store, close: async () => store.destroy() };
    },
  });
}

const tenant = () => `tenant-${randomBytes(5).toString('hex')}`;
const key = (value = canaryKey()) => ApiKey.fromTrusted(value);

async function failure(promise: Promise<unknown>): Promise<SecretStoreError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof SecretStoreError)) throw new Error(`expected a SecretStoreError, got ${outcome === undefined ? 'success' : inspect(outcome)}`);
  return outcome;
}

/** Everything an operator could see of an error: message, stack, cause chain, own properties. */
function visibleText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as Error & { cause?: unknown };
    parts.push(String(e.message), String(e.stack), inspect(e, { depth: 5 }), JSON.stringify(e));
    current = e.cause;
  }
  return parts.join('\n');
}

describe.each(backends)('SecretStore contract: $name', (backend) => {
  let store: SecretStore;
  let close: () => Promise<void>;
  let logs: CapturedLogs;
  let reader: SecretReader;
  let managed: SecretStore;

  beforeAll(async () => {
    ({ store, close } = await backend.create());
    logs = captureLogs('secrets-test');
    reader = new SecretReader(store, dataSource, logs.logger, 60_000);
    managed = new CacheInvalidatingSecretStore(store, () => reader);
  });
  afterAll(async () => close());

  it('stores a pending version idempotently on its id, and refuses the same id with another value', async () => {
    const t = tenant();
    const v1 = randomUUID();
    const value = canaryKey();
    await store.putPending(t, v1, key(value));
    await store.putPending(t, v1, key(value));
    const other = canaryKey('other');
    const error = await failure(store.putPending(t, v1, key(other)));
    expect(error.code).toBe('already_exists');
    expect(visibleText(error)).not.toContain(other);
    expect(visibleText(error)).not.toContain(value);

    const read = await store.getValue(t, { versionId: v1 });
    expect(read.key.reveal()).toBe(value);
    expect((await store.getValue(t, { stage: 'AWSPENDING' })).versionId).toBe(v1);
    expect((await store.describe(t))!.versions.map((v) => [v.versionId, v.stages])).toEqual([[v1, ['AWSPENDING']]]);
  });

  it('reads by label and by id; AWSPENDING stays only on the newest pending version', async () => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    await expect(store.getValue(t, { stage: 'AWSCURRENT' })).rejects.toMatchObject({ code: 'not_found' });
    await store.promote(t, v1, null);
    const second = canaryKey();
    await store.putPending(t, v2, key(second));
    expect((await store.getValue(t, { stage: 'AWSCURRENT' })).versionId).toBe(v1);
    const pending = await store.getValue(t, { stage: 'AWSPENDING' });
    expect([pending.versionId, pending.key.reveal()]).toEqual([v2, second]);
    await expect(store.getValue(t, { versionId: randomUUID() })).rejects.toMatchObject({ code: 'not_found' });
    await expect(store.getValue(tenant(), { versionId: v1 })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('promotes with compare-and-swap: the superseded version loses every label, a stale expectation is a conflict', async () => {
    const t = tenant();
    const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    await store.promote(t, v1, null);
    await store.promote(t, v1, null); // already current: a retried promotion is a no-op
    await store.putPending(t, v2, key());
    await store.promote(t, v2, v1);
    const stages = Object.fromEntries((await store.describe(t))!.versions.map((v) => [v.versionId, v.stages]));
    expect(stages).toEqual({ [v1]: [], [v2]: ['AWSCURRENT'] });

    await store.putPending(t, v3, key());
    const stale = await failure(store.promote(t, v3, v1));
    expect(stale.code).toBe('conflict');
    expect((await store.getValue(t, { stage: 'AWSCURRENT' })).versionId).toBe(v2);
  });

  it('two concurrent promotions from the same current version: exactly one wins', async () => {
    const t = tenant();
    const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    await store.promote(t, v1, null);
    await store.putPending(t, v2, key());
    await store.putPending(t, v3, key());
    const results = await Promise.allSettled([store.promote(t, v2, v1), store.promote(t, v3, v1)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toMatchObject({ code: 'conflict' });
    const current = (await store.getValue(t, { stage: 'AWSCURRENT' })).versionId;
    expect([v2, v3]).toContain(current);
    const labelled = (await store.describe(t))!.versions.filter((v) => v.stages.includes('AWSCURRENT'));
    expect(labelled.map((v) => v.versionId)).toEqual([current]);
  });

  it('retires a version: no labels left, idempotent', async () => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    await store.promote(t, v1, null);
    await store.putPending(t, v2, key());
    await store.retire(t, v2);
    await store.retire(t, v2);
    await store.retire(t, v1);
    expect((await store.describe(t))!.versions.every((v) => v.stages.length === 0)).toBe(true);
    await expect(store.getValue(t, { stage: 'AWSCURRENT' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(store.retire(t, randomUUID())).rejects.toMatchObject({ code: 'not_found' });
  });

  it('after disable no read returns the key, cached or not; a revocation row wins over any cache', async () => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    const value = canaryKey();
    await managed.putPending(t, v1, key(value));
    await managed.promote(t, v1, null);
    expect((await reader.readForUse(t, v1)).reveal()).toBe(value); // now cached

    await managed.disable(t, v1);
    for (const attempt of [reader.readForUse(t, v1), store.getValue(t, { versionId: v1 })]) {
      const error = await failure(attempt);
      expect(error.code).toBe('disabled');
      expect(visibleText(error)).not.toContain(value);
    }
    await expect(store.getValue(t, { stage: 'AWSCURRENT' })).rejects.toMatchObject({ code: 'not_found' });
    const described = (await store.describe(t))!;
    expect(described.versions).toEqual([expect.objectContaining({ versionId: v1, stages: [], disabled: true })]);
    await managed.disable(t, v1); // idempotent

    // A reader whose cache nobody invalidates still refuses once the revocation is committed.
    const other = canaryKey();
    const isolated = new SecretReader(store, dataSource, logs.logger, 60_000);
    await managed.putPending(t, v2, key(other));
    expect((await isolated.readForUse(t, v2)).reveal()).toBe(other);
    await db.query(`INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id) VALUES ($1, $2, 'compromised', 'test', 'c-1')`, [v2, t]);
    const revoked = await failure(isolated.readForUse(t, v2));
    expect(revoked.code).toBe('revoked');
    expect(visibleText(revoked)).not.toContain(other);
    expect(logs.text()).not.toContain(value);
    expect(logs.text()).not.toContain(other);
  });

  it('schedules deletion and restores; reads refuse while scheduled; a new submission restores (reinstall)', async () => {
    const t = tenant();
    const [v1, v2] = [randomUUID(), randomUUID()];
    await store.putPending(t, v1, key());
    await store.promote(t, v1, null);
    await expect(store.scheduleDeletion(t, 3)).rejects.toMatchObject({ code: 'invalid_request' });
    await store.scheduleDeletion(t, 7);
    await store.scheduleDeletion(t, 7); // already scheduled: no-op
    expect((await store.describe(t))!.deletionScheduledFor).toBeInstanceOf(Date);
    await expect(store.getValue(t, { versionId: v1 })).rejects.toMatchObject({ code: 'scheduled_for_deletion' });
    await store.restore(t);
    expect((await store.describe(t))!.deletionScheduledFor).toBeNull();
    expect((await store.getValue(t, { stage: 'AWSCURRENT' })).versionId).toBe(v1);

    await store.scheduleDeletion(t, 30);
    await store.putPending(t, v2, key());
    expect((await store.describe(t))!.deletionScheduledFor).toBeNull();
    expect((await store.getValue(t, { stage: 'AWSPENDING' })).versionId).toBe(v2);
    await expect(store.restore(tenant())).rejects.toMatchObject({ code: 'not_found' });
  });

  it('describes versions and labels without values; null for an unknown tenant', async () => {
    const t = tenant();
    const value = canaryKey();
    const v1 = randomUUID();
    await store.putPending(t, v1, key(value));
    const described = await store.describe(t);
    expect(described).toMatchObject({ tenantId: t, name: `keyward/${described!.name.split('/')[1]}/tenants/${t}/pleo/integrated-api-key`, deletionScheduledFor: null });
    expect(described!.versions).toEqual([expect.objectContaining({ versionId: v1, stages: ['AWSPENDING'] })]);
    expect(JSON.stringify(described)).not.toContain(value);
    expect(await store.describe(tenant())).toBeNull();
  });

  it.each(['a/b', '..', 'x/../y', '', 'tenant.with.dots', 'ä', 'x'.repeat(65)])('refuses tenant id %j with invalid_name, echoing nothing of the value', async (bad) => {
    const value = canaryKey();
    const error = await failure(store.putPending(bad, randomUUID(), key(value)));
    expect(error.code).toBe('invalid_name');
    expect(visibleText(error)).not.toContain(value);
    await expect(store.describe(bad)).rejects.toMatchObject({ code: 'invalid_name' });
  });

  it('refuses values over 65,536 bytes and malformed version ids without echoing the value', async () => {
    const huge = canaryKey() + 'x'.repeat(65_537);
    const tooLarge = await failure(store.putPending(tenant(), randomUUID(), key(huge)));
    expect(tooLarge.code).toBe('value_too_large');
    const value = canaryKey();
    const badId = await failure(store.putPending(tenant(), 'short', key(value)));
    expect(badId.code).toBe('invalid_request');
    for (const error of [tooLarge, badId]) expect(visibleText(error)).not.toContain('pleo_canary_');
  });

  it('answers ping', async () => {
    await store.ping();
  });
});
