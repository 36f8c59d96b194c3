import type { EntityManager } from 'typeorm';
import { ApiKey } from '@keyward/key-material';

/**
 * Where tenants' keys live. Two backends implement it: `aws` (Secrets Manager) and `local`
 * (sealed rows in Postgres). One secret per tenant, named
 * `{prefix}/{env}/tenants/{tenantId}/pleo/integrated-api-key`; one version per credential, whose
 * version id IS the credential id (ClientRequestToken), so every write is idempotent.
 * Labels follow Secrets Manager's rotation protocol: AWSPENDING for a submitted key, AWSCURRENT
 * for the active one; a superseded version has no label (deprecated).
 *
 * Raw store reads do not check revocations: code that reads a key to USE it goes through
 * `SecretReader`, which does.
 */
type SecretStage = 'AWSCURRENT' | 'AWSPENDING';

export interface SecretVersionInfo {
  versionId: string;
  stages: string[];
  createdAt: Date;
  /** Disabled after a compromise: no read returns its value. */
  disabled?: boolean;
}

export interface SecretDescription {
  name: string;
  tenantId: string;
  versions: SecretVersionInfo[];
  deletionScheduledFor: Date | null;
}

export type VersionSelector = { versionId: string } | { stage: SecretStage };

export interface SecretStore {
  readonly backend: 'local' | 'aws';

  /** Stores `key` as the tenant's AWSPENDING version (creating the secret if needed). Idempotent on versionId. */
  putPending(tenantId: string, versionId: string, key: ApiKey): Promise<void>;

  /** Reads one version by id or label. */
  getValue(tenantId: string, selector: VersionSelector): Promise<{ versionId: string; key: ApiKey }>;

  /**
   * Moves AWSCURRENT to `versionId` if it is now on `expectedCurrentVersionId` (null: on no
   * version) — compare-and-swap; a moved AWSCURRENT raises SecretConflictError. Also takes
   * AWSPENDING off `versionId` and every label off the superseded version. Already current: no-op.
   */
  promote(tenantId: string, versionId: string, expectedCurrentVersionId: string | null): Promise<void>;

  /** Takes every label off the version (deprecated). Idempotent. */
  retire(tenantId: string, versionId: string): Promise<void>;

  /** After a compromise: the version keeps no label and no read of it through this store returns the key. */
  disable(tenantId: string, versionId: string): Promise<void>;

  /** Schedules deletion of the tenant's secret after a recovery window (7–30 days). */
  scheduleDeletion(tenantId: string, recoveryWindowDays: number): Promise<void>;

  /** Cancels a scheduled deletion. */
  restore(tenantId: string): Promise<void>;

  /**
   * Deletes for good the secrets whose recovery window has passed; returns their tenants. Only
   * backends that must do it themselves have it (local) — Secrets Manager purges on its own.
   * `record` runs in the same transaction as the deletion (the audit entry commits with it).
   */
  purgeExpired?(record?: (tx: EntityManager, tenantIds: string[]) => Promise<void>): Promise<string[]>;

  /** Versions and labels, never values. Null when the tenant has no secret. */
  describe(tenantId: string): Promise<SecretDescription | null>;

  /** Readiness: the backend answers. */
  ping(): Promise<void>;
}

export const SECRET_STORE = Symbol('SECRET_STORE');

export type SecretErrorCode =
  | 'not_found'
  | 'already_exists'
  | 'conflict'
  | 'quota_exceeded'
  | 'throttled'
  | 'unavailable'
  | 'access_denied'
  | 'crypto_failure'
  | 'revoked'
  | 'value_too_large'
  | 'invalid_name'
  | 'disabled'
  /** The secret is scheduled for deletion: reads refuse until it is restored. */
  | 'scheduled_for_deletion'
  /** A malformed argument (version id, recovery window) — a bug in the caller, not in the data. */
  | 'invalid_request';

/** The library's own errors. Messages name tenants, versions and codes — never a value. */
export class SecretStoreError extends Error {
  constructor(
    readonly code: SecretErrorCode,
    message: string,
    /** Worth retrying later (throttling, 5xx, network). */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'SecretStoreError';
  }
}
