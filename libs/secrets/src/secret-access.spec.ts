import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiKey } from '@keyward/key-material';
import { canaryKey, SecretsManagerEmulator } from '@keyward/testing';
import { AwsSecretStore } from './aws-secret-store';
import { SECRET_OPERATIONS_BY_SERVICE, SecretStoreOperation, SECRETS_MANAGER_ACTIONS_BY_OPERATION, secretsManagerActionsFor, secretsManagerPermissionsFor, SecretsServiceName } from './secret-access';

/**
 * Least privilege, checked: every store operation is run against the emulator along each of its
 * code paths, the Secrets Manager operations it sends are recorded, and the declared table
 * must match them exactly; each service's IAM policy must then grant exactly what its operations send
 * (plus the TagResource that AWS checks for the tags of a CreateSecret).
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
let store: AwsSecretStore;
const observed = new Map<SecretStoreOperation, Set<string>>();

beforeAll(async () => {
  emulator = await SecretsManagerEmulator.start();
  store = new AwsSecretStore({
    region: 'eu-west-1',
    endpoint: emulator.endpoint,
    maxAttempts: 1,
    naming: { namePrefix: 'keyward', envName: 'test' },
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const record = async (operation: SecretStoreOperation, run: () => Promise<unknown>) => {
    emulator.clearReceivedOperations();
    await run();
    const set = observed.get(operation) ?? new Set<string>();
    for (const op of emulator.receivedOperations()) set.add(op);
    observed.set(operation, set);
  };
  const t = 'iam-tenant';
  const [v1, v2, v3] = [randomUUID(), randomUUID(), randomUUID()];
  await record('putPending', () => store.putPending(t, v1, ApiKey.fromTrusted(canaryKey()))); // creates the secret
  await record('putPending', () => store.putPending(t, v1, ApiKey.fromTrusted(canaryKey())).catch(() => undefined)); // same id, other value
  await record('getValue', () => store.getValue(t, { versionId: v1 }));
  await record('promote', () => store.promote(t, v1, null));
  await record('putPending', () => store.putPending(t, v2, ApiKey.fromTrusted(canaryKey())));
  await record('promote', () => store.promote(t, v2, v1));
  await record('promote', () => store.promote(t, v2, v1)); // already current
  await record('putPending', () => store.putPending(t, v3, ApiKey.fromTrusted(canaryKey())));
  await record('retire', () => store.retire(t, v3));
  await record('disable', () => store.disable(t, v2));
  await record('describe', () => store.describe(t));
  await record('describe', () => store.describe('iam-unknown'));
  await record('ping', () => store.ping());
  await record('scheduleDeletion', () => store.scheduleDeletion(t, 7));
  await record('scheduleDeletion', () => store.scheduleDeletion(t, 7)); // already scheduled
  await record('getValue', () => store.getValue(t, { versionId: v1 }).catch(() => undefined)); // scheduled for deletion
  await record('restore', () => store.restore(t));
  await record('scheduleDeletion', () => store.scheduleDeletion(t, 7));
  await record('putPending', () => store.putPending(t, randomUUID(), ApiKey.fromTrusted(canaryKey()))); // reinstall
});

afterAll(async () => {
  store?.destroy();
  await emulator?.stop();
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
      if (list(s.Action).includes('secretsmanager:TagResource')) {
        // Only the tags of a create: a tenant-id tag, on a secret that has no tenant yet — never a re-tag.
        expect(list(s.Action)).toEqual(['secretsmanager:TagResource']);
        expect(s.Condition?.StringLike?.['aws:RequestTag/tenant-id']).toBe('?*');
        expect(s.Condition?.['ForAllValues:StringEquals']?.['aws:TagKeys']).toEqual(['tenant-id']);
        expect(s.Condition?.Null?.['secretsmanager:ResourceTag/tenant-id']).toBe('true');
      }
    }
    expect(JSON.stringify(policy)).not.toMatch(/UntagResource|"secretsmanager:\*"/);
  });

  it('allows CreateSecret only with a tenant-id request tag, everything else only on tenant-tagged secrets', () => {
    for (const s of secretStatements.filter((x) => x.Effect === 'Allow')) {
      if (list(s.Action).includes('secretsmanager:TagResource')) continue; // checked above
      if (list(s.Action).includes('secretsmanager:CreateSecret')) {
        expect(list(s.Action)).toEqual(['secretsmanager:CreateSecret']);
        expect(s.Condition?.StringLike?.['aws:RequestTag/tenant-id']).toBe('?*');
        expect(s.Condition?.['ForAllValues:StringEquals']?.['aws:TagKeys']).toEqual(['tenant-id']);
      } else {
        expect(s.Condition?.Null?.['secretsmanager:ResourceTag/tenant-id']).toBe('false');
      }
    }
  });
});
