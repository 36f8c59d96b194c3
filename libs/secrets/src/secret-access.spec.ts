import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKey } from '@keyward/key-material';
import { CreateSecretCommand, DeleteSecretCommand, DescribeSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { canaryKey, EMULATOR_CREDENTIALS, SecretsManagerEmulator } from '@keyward/testing';
import { AwsSecretStore } from './aws-secret-store';
import { SECRET_OPERATIONS_BY_SERVICE, SecretStoreOperation, SECRETS_MANAGER_ACTIONS_BY_OPERATION, secretsManagerActionsFor, secretsManagerPermissionsFor, SecretsServiceName } from './secret-access';

/**
 * Least privilege, checked against AWS's evaluation of the committed policies: the emulator
 * evaluates `deploy/iam/<service>.json` on every call (ADR 0017), and each service's store
 * operations run under that service's credentials along each of their code paths, a tenant's
 * first write and the readiness probe included. The Secrets Manager operations they send are
 * recorded, and the declared table must match them exactly.
 */
const POLICY_DIR = join(__dirname, '../../../deploy/iam');
const RESOURCE = 'arn:aws:secretsmanager:*:*:secret:keyward/*/tenants/*';

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

let emulator: SecretsManagerEmulator;
const stores = new Map<string, AwsSecretStore>();
const observed = new Map<SecretStoreOperation, Set<string>>();
const storeAs = (role: keyof typeof EMULATOR_CREDENTIALS): AwsSecretStore => {
  let store = stores.get(role);
  if (!store) {
    store = new AwsSecretStore({ region: 'eu-west-1', endpoint: emulator.endpoint, maxAttempts: 1, naming: { namePrefix: 'keyward', envName: 'test' }, credentials: EMULATOR_CREDENTIALS[role] });
    stores.set(role, store);
  }
  return store;
};
const rawAs = (role: keyof typeof EMULATOR_CREDENTIALS) => new SecretsManagerClient({ region: 'eu-west-1', endpoint: emulator.endpoint, credentials: EMULATOR_CREDENTIALS[role], maxAttempts: 1 });
const nameOf = (tenantId: string) => `keyward/test/tenants/${tenantId}/pleo/integrated-api-key`;
const awsError = (p: Promise<unknown>) =>
  p.then(
    () => 'no error',
    (e: { name: string }) => e.name,
  );

beforeAll(async () => {
  emulator = await SecretsManagerEmulator.start();
  const [intake, validator, rotation] = [storeAs('intake'), storeAs('validator'), storeAs('rotation')];
  const record = async (operation: SecretStoreOperation, run: () => Promise<unknown>) => {
    emulator.clearReceivedOperations();
    await run();
    const set = observed.get(operation) ?? new Set<string>();
    for (const op of emulator.receivedOperations()) set.add(op);
    observed.set(operation, set);
  };
  const t = 'iam-tenant';
  const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
  await record('putPending', () => intake.putPending(t, v1, ApiKey.fromTrusted(canaryKey()))); // a new tenant: creates the secret
  await record('putPending', () => intake.putPending(t, v1, ApiKey.fromTrusted(canaryKey())).catch(() => undefined)); // same id, other value
  await record('getValue', () => validator.getValue(t, { versionId: v1 }));
  await record('promote', () => rotation.promote(t, v1, null));
  await record('putPending', () => intake.putPending(t, v2, ApiKey.fromTrusted(canaryKey())));
  await record('promote', () => rotation.promote(t, v2, v1));
  await record('promote', () => rotation.promote(t, v2, v1)); // already current
  await record('putPending', () => intake.putPending(t, v3, ApiKey.fromTrusted(canaryKey())));
  await record('retire', () => rotation.retire(t, v3));
  await record('disable', () => rotation.disable(t, v2));
  await record('describe', () => rotation.describe(t));
  await record('describe', () => rotation.describe('iam-unknown'));
  for (const store of [intake, validator, rotation]) await record('ping', () => store.ping());
  await record('scheduleDeletion', () => rotation.scheduleDeletion(t, 7));
  await record('scheduleDeletion', () => rotation.scheduleDeletion(t, 7)); // already scheduled
  await record('getValue', () => validator.getValue(t, { versionId: v1 }).catch(() => undefined)); // scheduled for deletion
  await record('restore', () => rotation.restore(t));
  await record('scheduleDeletion', () => rotation.scheduleDeletion(t, 7));
  await record('putPending', () => intake.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()))); // reinstall
});

afterAll(async () => {
  for (const store of stores.values()) store.destroy();
  await emulator?.stop();
});

describe('each service as its IAM role, evaluated the way AWS evaluates deploy/iam', () => {
  it('runs every code path of every service without a single AccessDenied', () => {
    expect(emulator.deniedCalls()).toEqual([]);
  });

  it("lets intake store a new tenant's first key: PutSecretValue and DescribeSecret reach ResourceNotFound, CreateSecret with the tag is allowed", async () => {
    const tenantId = `first-${randomUUID().slice(0, 8)}`;
    const credentialId = randomUUID();
    await storeAs('intake').putPending(tenantId, credentialId, ApiKey.fromTrusted(canaryKey()));
    expect((await storeAs('rotation').describe(tenantId))?.versions.map((v) => [v.versionId, v.stages])).toEqual([[credentialId, ['AWSPENDING']]]);
    const described = await rawAs('unrestricted').send(new DescribeSecretCommand({ SecretId: nameOf(tenantId) }));
    expect(described.Tags).toEqual([{ Key: 'tenant-id', Value: tenantId }]);
  });

  it.each(['intake', 'validator', 'rotation'] as const)('answers %s readiness (a secret that never exists) as ready', async (role) => {
    await expect(storeAs(role).ping()).resolves.toBeUndefined();
  });

  it('tells the validator and rotation that a tenant without a secret has none, instead of refusing them', async () => {
    await expect(storeAs('validator').getValue('never-stored', { stage: 'AWSCURRENT' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(storeAs('rotation').describe('never-stored')).resolves.toBeNull();
  });

  it.each([
    ['intake reads a key', () => storeAs('intake').getValue('iam-tenant', { stage: 'AWSCURRENT' })],
    ['the validator writes a key', () => storeAs('validator').putPending('iam-tenant', randomUUID(), ApiKey.fromTrusted(canaryKey()))],
    ['rotation writes a key', () => storeAs('rotation').putPending(`rot-${randomUUID().slice(0, 8)}`, randomUUID(), ApiKey.fromTrusted(canaryKey()))],
    ['the validator moves a label', () => storeAs('validator').promote('iam-tenant', randomUUID(), null)],
    ['intake schedules a deletion', () => storeAs('intake').scheduleDeletion('iam-tenant', 7)],
  ])('refuses what a role was not granted: %s', async (_what, call) => {
    await expect(call()).rejects.toMatchObject({ code: 'access_denied' });
  });

  it('refuses a CreateSecret without the tenant-id tag, or with another tag key too', async () => {
    const intake = rawAs('intake');
    try {
      const base = { SecretString: 'x', Name: nameOf(`tags-${randomUUID().slice(0, 8)}`) };
      expect(await awsError(intake.send(new CreateSecretCommand(base)))).toBe('AccessDeniedException');
      expect(await awsError(intake.send(new CreateSecretCommand({ ...base, Tags: [{ Key: 'tenant-id', Value: '' }] })))).toBe('AccessDeniedException');
      expect(
        await awsError(
          intake.send(
            new CreateSecretCommand({
              ...base,
              Tags: [
                { Key: 'tenant-id', Value: 't' },
                { Key: 'owner', Value: 'x' },
              ],
            }),
          ),
        ),
      ).toBe('AccessDeniedException');
      expect(await awsError(intake.send(new CreateSecretCommand({ ...base, Tags: [{ Key: 'tenant-id', Value: 't' }] })))).toBe('no error');
    } finally {
      intake.destroy();
    }
  });

  it('refuses every role outside the tenants prefix and on a secret whose tenant-id tag is empty', async () => {
    const admin = rawAs('unrestricted');
    const validator = rawAs('validator');
    try {
      await admin.send(new CreateSecretCommand({ Name: 'other/secret', SecretString: 'x', Tags: [{ Key: 'tenant-id', Value: 't' }] }));
      await admin.send(new CreateSecretCommand({ Name: nameOf('blank-tag'), SecretString: 'x', Tags: [{ Key: 'tenant-id', Value: '' }] }));
      expect(await awsError(validator.send(new GetSecretValueCommand({ SecretId: 'other/secret' })))).toBe('AccessDeniedException');
      expect(await awsError(validator.send(new GetSecretValueCommand({ SecretId: nameOf('blank-tag') })))).toBe('AccessDeniedException');
      expect(await awsError(validator.send(new GetSecretValueCommand({ SecretId: nameOf('never-stored') })))).toBe('ResourceNotFoundException');
    } finally {
      admin.destroy();
      validator.destroy();
    }
  });

  it('lets rotation schedule a deletion only with a recovery window, never a forced deletion', async () => {
    const tenantId = `del-${randomUUID().slice(0, 8)}`;
    await storeAs('intake').putPending(tenantId, randomUUID(), ApiKey.fromTrusted(canaryKey()));
    const rotation = rawAs('rotation');
    try {
      expect(await awsError(rotation.send(new DeleteSecretCommand({ SecretId: nameOf(tenantId), ForceDeleteWithoutRecovery: true })))).toBe('AccessDeniedException');
      expect(await awsError(rotation.send(new DeleteSecretCommand({ SecretId: nameOf(tenantId) })))).toBe('AccessDeniedException'); // no window named
      expect(await awsError(rotation.send(new DeleteSecretCommand({ SecretId: nameOf(tenantId), RecoveryWindowInDays: 7 })))).toBe('no error');
    } finally {
      rotation.destroy();
    }
  });

  it('refuses a caller whose access key belongs to no role', async () => {
    const stranger = new SecretsManagerClient({ region: 'eu-west-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKIASTRANGER', secretAccessKey: 'x' }, maxAttempts: 1 });
    try {
      expect(await awsError(stranger.send(new DescribeSecretCommand({ SecretId: nameOf('iam-tenant') })))).toBe('UnrecognizedClientException');
    } finally {
      stranger.destroy();
    }
  });
});

describe('which Secrets Manager actions each store operation sends', () => {
  it.each(Object.keys(SECRETS_MANAGER_ACTIONS_BY_OPERATION) as SecretStoreOperation[])('%s sends exactly its declared actions', (operation) => {
    expect([...(observed.get(operation) ?? [])].sort()).toEqual([...SECRETS_MANAGER_ACTIONS_BY_OPERATION[operation]].sort());
  });
});

describe.each(Object.keys(SECRET_OPERATIONS_BY_SERVICE) as SecretsServiceName[])('IAM policy deploy/iam/%s.json', (service) => {
  const policy = JSON.parse(readFileSync(join(POLICY_DIR, `${service}.json`), 'utf8')) as { Version: string; Statement: Statement[] };
  const list = (x: string | string[]) => (Array.isArray(x) ? x : [x]);
  const secretStatements = policy.Statement.filter((s) => list(s.Action).some((a) => a.startsWith('secretsmanager:')));

  it('grants exactly the Secrets Manager actions its operations send, plus what AWS implies for them', () => {
    expect(policy.Version).toBe('2012-10-17');
    const granted = new Set(secretStatements.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action)));
    expect([...granted].sort()).toEqual(secretsManagerPermissionsFor(service));
    const recorded = new Set(SECRET_OPERATIONS_BY_SERVICE[service].flatMap((op) => [...(observed.get(op) ?? [])].map((a) => `secretsmanager:${a}`)));
    expect([...recorded].sort()).toEqual(secretsManagerActionsFor(service));
  });

  it('limits every Secrets Manager grant to the tenants name prefix, with no wildcard actions and no tag changes', () => {
    for (const s of secretStatements) {
      expect(list(s.Resource)).toEqual([RESOURCE]);
      for (const action of list(s.Action)) expect(action).toMatch(/^secretsmanager:[A-Za-z]+$/);
      expect(list(s.Action)).not.toEqual(expect.arrayContaining(['secretsmanager:UntagResource']));
    }
    expect(JSON.stringify(policy)).not.toMatch(/UntagResource|"secretsmanager:\*"/);
  });
});
