import type { SecretStore } from './secret-store';

/**
 * Who may do what with tenants' secrets — the source of truth for `deploy/iam/*.json`.
 * A test runs every operation against the Secrets Manager emulator, records the API calls it
 * sends, and checks both this table and each policy against them.
 */
/** Operations that reach the backend's API (the local-only purge does not). */
export type SecretStoreOperation = Exclude<keyof SecretStore, 'backend' | 'purgeExpired'>;

/** Secrets Manager actions each store operation may send (every path: create-on-first-write, reinstall, errors). */
export const SECRETS_MANAGER_ACTIONS_BY_OPERATION: Record<SecretStoreOperation, readonly string[]> = {
  // DescribeSecret tells "scheduled for deletion" from other InvalidRequestExceptions; RestoreSecret is the reinstall path.
  putPending: ['PutSecretValue', 'CreateSecret', 'DescribeSecret', 'RestoreSecret'],
  getValue: ['GetSecretValue', 'DescribeSecret'],
  promote: ['ListSecretVersionIds', 'UpdateSecretVersionStage'],
  retire: ['ListSecretVersionIds', 'UpdateSecretVersionStage'],
  disable: ['ListSecretVersionIds', 'UpdateSecretVersionStage'],
  scheduleDeletion: ['DeleteSecret', 'DescribeSecret'],
  restore: ['RestoreSecret'],
  describe: ['DescribeSecret', 'ListSecretVersionIds'],
  ping: ['DescribeSecret'],
};

export type SecretsServiceName = 'intake' | 'validator' | 'rotation' | 'gateway';

/** Store operations each service's code path calls (intake writes pending versions; validator reads; rotation moves labels, disables, deletes). */
export const SECRET_OPERATIONS_BY_SERVICE: Record<SecretsServiceName, readonly SecretStoreOperation[]> = {
  intake: ['putPending', 'ping'],
  validator: ['getValue', 'ping'],
  rotation: ['promote', 'retire', 'disable', 'scheduleDeletion', 'restore', 'describe', 'ping'],
  // The gateway reads the current key to attach it to the integration's Pleo calls.
  gateway: ['getValue', 'ping'],
};

/**
 * Permissions AWS checks for a call besides its own action: a `CreateSecret` that carries `Tags`
 * is also authorised as `TagResource` (Secrets Manager API reference, CreateSecret "Required
 * permissions"). The policy grants it only for tagging a secret that has no tenant yet.
 */
const IMPLIED_PERMISSIONS: Readonly<Record<string, readonly string[]>> = {
  CreateSecret: ['TagResource'],
};

/** `secretsmanager:<Action>` names a service's code sends, sorted. */
export function secretsManagerActionsFor(service: SecretsServiceName): string[] {
  const actions = new Set<string>();
  for (const operation of SECRET_OPERATIONS_BY_SERVICE[service]) {
    for (const action of SECRETS_MANAGER_ACTIONS_BY_OPERATION[operation]) actions.add(`secretsmanager:${action}`);
  }
  return [...actions].sort();
}

/** What a service's IAM policy must allow: the actions it sends plus the permissions they imply, sorted. */
export function secretsManagerPermissionsFor(service: SecretsServiceName): string[] {
  const sent = secretsManagerActionsFor(service);
  const implied = sent.flatMap((action) => (IMPLIED_PERMISSIONS[action.replace('secretsmanager:', '')] ?? []).map((a) => `secretsmanager:${a}`));
  return [...new Set([...sent, ...implied])].sort();
}
