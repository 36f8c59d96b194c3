import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { DataSource } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { Metrics } from '@keyward/observability';
import { createDataSource } from '@keyward/persistence';
import { canaryKey, createTestDatabase, EMULATOR_CREDENTIALS, SecretsManagerEmulator } from '@keyward/testing';
import { AwsSecretStore, NO_CREDENTIAL_VERSION_ID } from './aws-secret-store';
import { SecretsQuotaMetrics, SharedSecretsBudget } from './secrets-manager-quotas';
import { SecretStoreError } from './secret-store';

let emulator: SecretsManagerEmulator;
beforeAll(async () => {
  // Without rate quotas: the tests below exercise one rule each; the quotas have emulators of their own.
  emulator = await SecretsManagerEmulator.start({ maxVersions: 5, rateQuotas: false });
});
afterAll(async () => emulator?.stop());
afterEach(() => emulator.clearFaults());

const store = (maxAttempts = 3) =>
  new AwsSecretStore({
    region: 'eu-west-1',
    endpoint: emulator.endpoint,
    maxAttempts,
    naming: { namePrefix: 'keyward', envName: 'test' },
    // The store's own rules, not IAM (secret-access.spec.ts runs each service as its role).
    credentials: EMULATOR_CREDENTIALS.unrestricted,
    retryBaseDelayMs: 1,
    kmsKeyId: 'alias/keyward-secrets',
  });
let n = 0;
const tenant = () => `aws-tenant-${Date.now().toString(36)}-${n++}`;

describe('AwsSecretStore against the emulator', () => {
  it('a new tenant costs one CreateSecret and one write: no PutSecretValue that fails first', async () => {
    const s = store();
    emulator.clearReceivedOperations();
    await s.putPending(tenant(), randomUUID(), ApiKey.fromTrusted(canaryKey()));
    expect(emulator.receivedOperations()).toEqual(['DescribeSecret', 'CreateSecret', 'PutSecretValue']);
    s.destroy();
  });

  it('creates the secret tagged with the tenant, with the KMS key and a placeholder holding AWSCURRENT', async () => {
    const s = store();
    const t = tenant();
    const v = randomUUID();
    await s.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    const client = rawClient();
    const name = `keyward/test/tenants/${t}/pleo/integrated-api-key`;
    const described = await client.send(new (await import('@aws-sdk/client-secrets-manager')).DescribeSecretCommand({ SecretId: name }));
    expect(described.Tags).toEqual([{ Key: 'tenant-id', Value: t }]);
    expect(described.KmsKeyId).toBe('alias/keyward-secrets');
    expect(described.VersionIdsToStages).toEqual({ [NO_CREDENTIAL_VERSION_ID]: ['AWSCURRENT'], [v]: ['AWSPENDING'] });
    s.destroy();
  });

  it('disables any number of compromised versions of one tenant within the 20-label quota', async () => {
    // AWS keeps ~100 versions (the shared emulator here keeps 5, which would drop the placeholder).
    const aws = await SecretsManagerEmulator.start();
    const s = new AwsSecretStore({ region: 'eu-west-1', endpoint: aws.endpoint, maxAttempts: 1, naming: { namePrefix: 'keyward', envName: 'test' }, credentials: EMULATOR_CREDENTIALS.unrestricted });
    const t = tenant();
    let current: string | null = null;
    for (let i = 0; i < 25; i++) {
      const v = randomUUID();
      await s.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
      await s.promote(t, v, current);
      await s.disable(t, v); // a compromise of each new key
      await expect(s.getValue(t, { versionId: v })).rejects.toMatchObject({ code: 'disabled' });
      current = null;
    }
    const disabled = (await s.describe(t))!.versions.filter((v) => v.disabled);
    expect(disabled.length).toBeLessThanOrEqual(16);
    s.destroy();
    await aws.stop();
  });

  it('never retries a quota error, and maps it to quota_exceeded', async () => {
    const s = store(4);
    const t = tenant();
    await s.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()));
    emulator.clearReceivedOperations();
    emulator.failNext('PutSecretValue', 'LimitExceededException', 400, 10);
    const value = canaryKey();
    const error = (await s.putPending(t, randomUUID(), ApiKey.fromTrusted(value)).catch((e: unknown) => e)) as SecretStoreError;
    expect(error).toBeInstanceOf(SecretStoreError);
    expect([error.code, error.transient]).toEqual(['quota_exceeded', false]);
    expect(emulator.receivedOperations().filter((op) => op === 'PutSecretValue')).toEqual(['PutSecretValue']);
    expect(`${error.message}${error.stack}${inspect(error)}`).not.toContain(value);
    s.destroy();
  });

  it('retries throttling and 5xx with backoff up to maxAttempts', async () => {
    const s = store(3);
    const t = tenant();
    const v = randomUUID();
    await s.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    emulator.clearReceivedOperations();
    emulator.failNext('GetSecretValue', 'ThrottlingException', 400, 1);
    emulator.failNext('GetSecretValue', 'InternalServiceError', 500, 1);
    expect((await s.getValue(t, { versionId: v })).versionId).toBe(v);
    expect(emulator.receivedOperations()).toEqual(['GetSecretValue', 'GetSecretValue', 'GetSecretValue']);

    emulator.clearReceivedOperations();
    emulator.failNext('GetSecretValue', 'ThrottlingException', 400, 3);
    const error = (await s.getValue(t, { versionId: v }).catch((e: unknown) => e)) as SecretStoreError;
    expect([error.code, error.transient]).toEqual(['throttled', true]);
    expect(emulator.receivedOperations()).toHaveLength(3);
    s.destroy();
  });

  it('retries a ThrottlingException on a write with backoff until it goes through, whatever maxAttempts says', async () => {
    const metrics = new Metrics('test');
    const s = new AwsSecretStore({
      region: 'eu-west-1',
      endpoint: emulator.endpoint,
      maxAttempts: 1,
      naming: { namePrefix: 'keyward', envName: 'test' },
      credentials: EMULATOR_CREDENTIALS.unrestricted,
      retryBaseDelayMs: 1,
      metrics: new SecretsQuotaMetrics(metrics),
    });
    const t = tenant();
    const v = randomUUID();
    await s.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()));
    emulator.clearReceivedOperations();
    emulator.failNext('PutSecretValue', 'ThrottlingException', 400, 6);
    emulator.failNext('UpdateSecretVersionStage', 'ThrottlingException', 400, 3);
    await s.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    await s.promote(t, v, null);
    expect(emulator.receivedOperations().filter((op) => op === 'PutSecretValue')).toHaveLength(7);
    expect((await s.describe(t))!.versions.find((x) => x.versionId === v)!.stages).toEqual(['AWSCURRENT']);
    const counted = (await metrics.registry.getSingleMetric('keyward_secrets_throttled_total')!.get()).values;
    expect(counted.filter((c) => c.labels.outcome === 'retried').reduce((sum, c) => sum + c.value, 0)).toBe(9);
    expect(counted.filter((c) => c.labels.outcome === 'surfaced')).toEqual([]);
    s.destroy();
  });

  it('gives a write up as throttled (transient, for the caller to retry later) once throttling outlasts its retry time', async () => {
    const s = new AwsSecretStore({
      region: 'eu-west-1',
      endpoint: emulator.endpoint,
      maxAttempts: 4,
      naming: { namePrefix: 'keyward', envName: 'test' },
      credentials: EMULATOR_CREDENTIALS.unrestricted,
      retryBaseDelayMs: 1,
      throttleRetryMs: 50,
    });
    const t = tenant();
    await s.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()));
    emulator.failNext('PutSecretValue', 'ThrottlingException', 400, 1_000_000);
    const error = (await s.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey())).catch((e: unknown) => e)) as SecretStoreError;
    emulator.clearFaults();
    expect([error.code, error.transient]).toEqual(['throttled', true]);
    s.destroy();
  });

  it.each([
    ['AccessDeniedException', 400, 'access_denied'],
    ['DecryptionFailure', 400, 'crypto_failure'],
    ['ResourceNotFoundException', 400, 'not_found'],
  ])('maps %s to %s', async (type, status, code) => {
    const s = store(1);
    const t = tenant();
    const v = randomUUID();
    await s.putPending(t, v, ApiKey.fromTrusted(canaryKey()));
    emulator.failNext('GetSecretValue', type, status, 1);
    await expect(s.getValue(t, { versionId: v })).rejects.toMatchObject({ code });
    s.destroy();
  });

  it.each(['a/b', '..', '', 'x'.repeat(65)])('refuses the tenant id %j before calling AWS', async (bad) => {
    const s = store();
    emulator.clearReceivedOperations();
    await expect(s.putPending(bad, randomUUID(), ApiKey.fromTrusted(canaryKey()))).rejects.toMatchObject({ code: 'invalid_name' });
    await expect(s.describe(bad)).rejects.toMatchObject({ code: 'invalid_name' });
    expect(emulator.receivedOperations()).toEqual([]);
    s.destroy();
  });

  it('checks the 65,536-byte limit before calling AWS', async () => {
    const s = store();
    emulator.clearReceivedOperations();
    await expect(s.putPending(tenant(), randomUUID(), ApiKey.fromTrusted('k'.repeat(65_537)))).rejects.toMatchObject({ code: 'value_too_large' });
    expect(emulator.receivedOperations()).toEqual([]);
    s.destroy();
  });
});

function rawClient(): SecretsManagerClient {
  return new SecretsManagerClient({ region: 'eu-west-1', endpoint: emulator.endpoint, credentials: EMULATOR_CREDENTIALS.unrestricted, maxAttempts: 1 });
}

describe('SecretsManagerEmulator enforces what AWS enforces (driven by the real SDK)', () => {
  const token = () => randomUUID();
  const errorOf = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: { name: string; $metadata?: { httpStatusCode?: number } }) => e,
    );

  it('first version is current; AWSPREVIOUS follows a moved AWSCURRENT; RemoveFromVersionId must name the holder', async () => {
    const c = rawClient();
    const name = `emulator/${token()}`;
    const [a, b, x] = [token(), token(), token()];
    await c.send(new CreateSecretCommand({ Name: name }));
    await c.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: a, SecretString: 'one', VersionStages: ['AWSPENDING'] }));
    expect((await c.send(new GetSecretValueCommand({ SecretId: name }))).VersionId).toBe(a);
    await c.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: b, SecretString: 'two', VersionStages: ['AWSPENDING'] }));

    const wrongHolder = await errorOf(c.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: b, RemoveFromVersionId: x })));
    expect(wrongHolder?.name).toBe('InvalidParameterException');
    expect(wrongHolder?.$metadata?.httpStatusCode).toBe(400);
    const noRemove = await errorOf(c.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: b })));
    expect(noRemove?.name).toBe('InvalidParameterException');

    await c.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: b, RemoveFromVersionId: a }));
    const versions = await c.send(new ListSecretVersionIdsCommand({ SecretId: name, IncludeDeprecated: true }));
    expect(Object.fromEntries(versions.Versions!.map((v) => [v.VersionId, v.VersionStages]))).toEqual({ [a]: ['AWSPREVIOUS'], [b]: ['AWSPENDING', 'AWSCURRENT'] });
    const removeCurrent = await errorOf(c.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', RemoveFromVersionId: b })));
    expect(removeCurrent?.name).toBe('InvalidParameterException');
  });

  it('ClientRequestToken: same token and value is a no-op, another value is ResourceExistsException', async () => {
    const c = rawClient();
    const name = `emulator/${token()}`;
    const a = token();
    await c.send(new CreateSecretCommand({ Name: name, SecretString: 'v', ClientRequestToken: a }));
    await c.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: a, SecretString: 'v' }));
    expect((await errorOf(c.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: a, SecretString: 'w' }))))?.name).toBe('ResourceExistsException');
    expect((await errorOf(c.send(new CreateSecretCommand({ Name: name }))))?.name).toBe('ResourceExistsException');
  });

  it('keeps only a bounded number of deprecated versions', async () => {
    const c = rawClient();
    const name = `emulator/${token()}`;
    await c.send(new CreateSecretCommand({ Name: name, SecretString: 'first', ClientRequestToken: token() }));
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const id = token();
      ids.push(id);
      await c.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: id, SecretString: `v${i}`, VersionStages: ['AWSPENDING'] }));
    }
    const versions = (await c.send(new ListSecretVersionIdsCommand({ SecretId: name, IncludeDeprecated: true }))).Versions!;
    expect(versions).toHaveLength(5); // maxVersions of this emulator
    expect(versions.map((v) => v.VersionId)).toContain(ids[7]);
    expect(versions.map((v) => v.VersionId)).not.toContain(ids[0]);
    const labelledOnly = (await c.send(new ListSecretVersionIdsCommand({ SecretId: name }))).Versions!;
    expect(labelledOnly).toHaveLength(2);
  });

  it("throttles above AWS's rate quotas with ThrottlingException (HTTP 400): writes share one quota, CreateSecret and reads have their own", async () => {
    let now = 1_000_000;
    const aws = await SecretsManagerEmulator.start({ clock: () => now });
    const c = new SecretsManagerClient({ region: 'eu-west-1', endpoint: aws.endpoint, credentials: EMULATOR_CREDENTIALS.unrestricted, maxAttempts: 1 });
    try {
      const name = `emulator/${token()}`;
      const first = token();
      await c.send(new CreateSecretCommand({ Name: name, SecretString: 'v', ClientRequestToken: first }));
      // The clock stands still: every call below falls in the same second.
      const writes = await Promise.all(
        Array.from({ length: 70 }, (_, i) =>
          errorOf(
            i % 2
              ? c.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: token(), SecretString: `v${i}`, VersionStages: ['AWSPENDING'] }))
              : c.send(new UpdateSecretVersionStageCommand({ SecretId: name, VersionStage: 'AWSCURRENT', MoveToVersionId: first, RemoveFromVersionId: first })),
          ),
        ),
      );
      const throttled = writes.filter((e) => e?.name === 'ThrottlingException');
      expect(throttled).toHaveLength(20);
      expect(throttled.every((e) => e?.$metadata?.httpStatusCode === 400)).toBe(true);
      expect(writes.filter((e) => e === undefined || e.name !== 'ThrottlingException')).toHaveLength(50);
      // Other quotas are not touched by the writes: 49 more CreateSecret, 200 reads, in the same second.
      const creates = await Promise.all(Array.from({ length: 49 }, () => errorOf(c.send(new CreateSecretCommand({ Name: `emulator/${token()}` })))));
      expect(creates.filter(Boolean)).toEqual([]);
      expect((await errorOf(c.send(new CreateSecretCommand({ Name: `emulator/${token()}` }))))?.name).toBe('ThrottlingException');
      const reads = await Promise.all(Array.from({ length: 200 }, () => errorOf(c.send(new GetSecretValueCommand({ SecretId: name, VersionId: first })))));
      expect(reads.filter(Boolean)).toEqual([]);
      // A second later the write quota has room again.
      now += 1_000;
      await c.send(new PutSecretValueCommand({ SecretId: name, ClientRequestToken: token(), SecretString: 'later', VersionStages: ['AWSPENDING'] }));
      expect(aws.rateQuotaUsage()).toMatchObject({
        writes: { accepted: 51, throttled: 20, peakPerSecond: 50 },
        createSecret: { accepted: 50, throttled: 1 },
        reads: { accepted: 200, throttled: 0 },
      });
    } finally {
      c.destroy();
      await aws.stop();
    }
  });

  it('a secret scheduled for deletion refuses reads (InvalidRequestException) until restored', async () => {
    const c = rawClient();
    const name = `emulator/${token()}`;
    await c.send(new CreateSecretCommand({ Name: name, SecretString: 'v', ClientRequestToken: token() }));
    expect((await errorOf(c.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 3 }))))?.name).toBe('InvalidParameterException');
    await c.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
    expect((await errorOf(c.send(new GetSecretValueCommand({ SecretId: name }))))?.name).toBe('InvalidRequestException');
    await c.send(new (await import('@aws-sdk/client-secrets-manager')).RestoreSecretCommand({ SecretId: name }));
    expect((await c.send(new GetSecretValueCommand({ SecretId: name }))).SecretString).toBe('v');
  });
});

describe('Secrets Manager calls of several replicas share one budget', () => {
  it('two stores on separate DataSources, 60 writes at once: every write lands, and no faster than the budget allows', async () => {
    const db = await createTestDatabase();
    const pools: DataSource[] = [];
    // AWS's write quota lowered to 12/s, the budget at 10/s: the same proportions as 50 and 40.
    const aws = await SecretsManagerEmulator.start({ rateQuotas: { writes: 12, createSecret: 12 } });
    const stores: AwsSecretStore[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const dataSource = await createDataSource({ url: db.url, poolSize: 3, applicationName: `replica-${i}` }).initialize();
        pools.push(dataSource);
        stores.push(
          new AwsSecretStore({
            region: 'eu-west-1',
            endpoint: aws.endpoint,
            maxAttempts: 2,
            naming: { namePrefix: 'keyward', envName: 'test' },
            credentials: EMULATOR_CREDENTIALS.unrestricted,
            budget: new SharedSecretsBudget(dataSource, { region: 'eu-west-1', ratePerSecond: 10 }),
          }),
        );
      }
      const tenants = Array.from({ length: 6 }, () => tenant());
      for (const t of tenants) await stores[0].putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()));
      await Promise.all(Array.from({ length: 60 }, (_, i) => stores[i % 2].putPending(tenants[i % 6], randomUUID(), ApiKey.fromTrusted(canaryKey()))));
      const writes = aws.rateQuotaUsage().writes!;
      expect(writes.accepted).toBeGreaterThanOrEqual(66);
      // Each write was let go at its turn, and turns come at 10 a second at most.
      expect(writes.lastAt! - writes.firstAt!).toBeGreaterThanOrEqual((writes.accepted / 10 - 1) * 1000 - 50);
      for (const t of tenants) expect((await stores[1].describe(t))!.versions.filter((v) => v.stages.includes('AWSPENDING'))).toHaveLength(1);
    } finally {
      for (const s of stores) s.destroy();
      await aws.stop();
      for (const dataSource of pools) await dataSource.destroy();
      await db.drop();
    }
  }, 60_000);
});
