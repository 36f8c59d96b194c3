import { SealedValue } from './envelope';

/** The local store's rows (`secrets`, `secret_versions`) as read, and a sealed value in and out of them. */
export interface VersionRow {
  version_id: string;
  tenant_id: string;
  secret_name: string;
  stages: string[];
  ciphertext: Buffer;
  iv: Buffer;
  auth_tag: Buffer;
  wrapped_data_key: Buffer;
  master_key_id: string;
  value_digest: string;
  created_at: Date;
  disabled_at: Date | null;
}

export interface SecretRow {
  name: string;
  tenant_id: string;
  deletion_scheduled_for: Date | null;
}

export const VERSION_COLUMNS = 'version_id, tenant_id, secret_name, stages, ciphertext, iv, auth_tag, wrapped_data_key, master_key_id, value_digest, created_at, disabled_at';
export const JOINED_VERSION_COLUMNS = VERSION_COLUMNS.split(', ')
  .map((column) => `v.${column}`)
  .join(', ');

export function sealedOf(row: VersionRow): SealedValue {
  return {
    ciphertext: row.ciphertext,
    iv: row.iv,
    authTag: row.auth_tag,
    wrappedDataKey: row.wrapped_data_key,
    masterKeyId: row.master_key_id,
    valueDigest: row.value_digest,
  };
}
