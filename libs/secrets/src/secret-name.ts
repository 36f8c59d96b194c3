import { TENANT_ID_PATTERN } from '@keyward/contracts';
import { SecretStoreError } from './secret-store';

/**
 * Tenant ids become one path segment of a secret name, and IAM policies grant by that path.
 * Anything that could leave the segment (`/`, `..`) or widen a wildcard is refused here, before
 * any backend sees it: the event contract's TENANT_ID_PATTERN.
 */
const TENANT_ID = TENANT_ID_PATTERN;
/** keyward's own probe secret for readiness: reserved (starts with `_`), so no customer can have it. */
export const READINESS_TENANT = '_keyward-readiness';
/** What Secrets Manager accepts as a secret name. */
const AWS_SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
/** AWS appends `-XXXXXX` to ARNs; a name ending like that makes partial-ARN lookups ambiguous. */
const ARN_SUFFIX_LOOKALIKE = /-[A-Za-z0-9]{6}$/;
/** Prefix and environment segments: no slashes, no dots, so the layout stays fixed. */
const NAME_SEGMENT = /^[A-Za-z0-9_+=@-]{1,64}$/;
/** Version ids are credential ids (UUIDs); AWS wants ClientRequestToken of 32–64 characters. */
const VERSION_ID = /^[A-Za-z0-9-]{32,64}$/;

/** Secrets Manager's limit for SecretString; the local store keeps the same limit so backends agree. */
const MAX_SECRET_VALUE_BYTES = 65_536;

export interface SecretNaming {
  namePrefix: string;
  envName: string;
}

export function assertTenantId(tenantId: string): void {
  if (typeof tenantId !== 'string' || !(TENANT_ID.test(tenantId) || tenantId === READINESS_TENANT)) {
    // The rejected value is not echoed: it came from outside and could be anything.
    throw new SecretStoreError('invalid_name', 'Tenant id must be 1–64 letters, digits, "_" or "-", starting with a letter or digit');
  }
}

export function assertVersionId(versionId: string): void {
  if (typeof versionId !== 'string' || !VERSION_ID.test(versionId)) {
    throw new SecretStoreError('invalid_request', 'Version id must be 32–64 letters, digits or "-" (a credential id)');
  }
}

/** `{prefix}/{env}/tenants/{tenantId}/pleo/integrated-api-key`, checked the way AWS would. */
export function secretNameFor(naming: SecretNaming, tenantId: string): string {
  assertTenantId(tenantId);
  if (!NAME_SEGMENT.test(naming.namePrefix) || !NAME_SEGMENT.test(naming.envName)) {
    throw new SecretStoreError('invalid_name', 'Secret name prefix and environment must be single path segments');
  }
  const name = `${naming.namePrefix}/${naming.envName}/tenants/${tenantId}/pleo/integrated-api-key`;
  if (!AWS_SECRET_NAME.test(name) || ARN_SUFFIX_LOOKALIKE.test(name)) {
    throw new SecretStoreError('invalid_name', `Secret name for tenant ${tenantId} is not a valid Secrets Manager name`);
  }
  return name;
}

export function assertValueSize(tenantId: string, value: string): void {
  if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_VALUE_BYTES) {
    throw new SecretStoreError('value_too_large', `Key for tenant ${tenantId} is larger than ${MAX_SECRET_VALUE_BYTES} bytes`);
  }
}

export function assertRecoveryWindow(days: number): void {
  if (!Number.isInteger(days) || days < 7 || days > 30) {
    throw new SecretStoreError('invalid_request', 'Recovery window must be a whole number of days from 7 to 30');
  }
}
