import { DataSource } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { KeywardLogger } from '@keyward/observability';
import { QueryRevocationCheck, RevocationCheck } from './revocation-check';
import { assertTenantId } from './secret-name';
import { SecretDescription, SecretStore, SecretStoreError, VersionSelector } from './secret-store';

const CREDENTIAL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Upper bound on cached keys by default (`KEYWARD_SECRET_CACHE_MAX_KEYS`), so a burst of tenants cannot grow the heap without limit. */
const DEFAULT_MAX_CACHED = 10_000;

interface CachedKey {
  key: ApiKey;
  expiresAt: number;
}

/**
 * The one way to read a key in order to USE it (call Pleo with it). Every call checks the
 * `revocations` table first — a committed revocation wins over any cache, in every process —
 * then a short in-process cache, then the store. Fails closed: if the revocation check cannot
 * run, no key is returned.
 */
export class SecretReader {
  private readonly cache = new Map<string, CachedKey>();
  /** Bumped by `forget`, so a read that raced a promote/disable does not cache what it fetched. */
  private generation = 0;

  constructor(
    private readonly store: SecretStore,
    dataSource: DataSource,
    private readonly logger: KeywardLogger,
    /** At most 60 s (config.secrets.cacheTtlMs); 0 disables the cache. */
    private readonly cacheTtlMs: number,
    private readonly now: () => number = Date.now,
    /** Per read by default; the gateway answers many reads with one query (CoalescedRevocationCheck). */
    private readonly revocations: RevocationCheck = new QueryRevocationCheck(dataSource),
    /** Keys kept at most (config.secrets.cacheMaxKeys); past it the oldest is dropped, and read again on its next use. */
    private readonly maxCached: number = DEFAULT_MAX_CACHED,
  ) {
    if (cacheTtlMs < 0 || cacheTtlMs > 60_000) throw new RangeError('Secret cache TTL must be between 0 and 60000 ms');
  }

  async readForUse(tenantId: string, credentialId: string): Promise<ApiKey> {
    assertTenantId(tenantId);
    if (typeof credentialId !== 'string' || !CREDENTIAL_ID.test(credentialId)) {
      throw new SecretStoreError('invalid_request', 'Credential id must be a UUID');
    }
    const cacheKey = `${tenantId}\0${credentialId}`;
    const revocation = await this.revocations.find(credentialId, tenantId);
    if (revocation) {
      this.cache.delete(cacheKey);
      this.logger.warn('Refused to read the key of a revoked credential', { tenantId, credentialId, reason: revocation.reason });
      throw new SecretStoreError('revoked', `Credential ${credentialId} of tenant ${tenantId} is revoked (${revocation.reason})`);
    }
    const cached = this.cache.get(cacheKey);
    if (cached && cached.expiresAt > this.now()) return cached.key;
    this.cache.delete(cacheKey);
    const generation = this.generation;
    try {
      const { key } = await this.store.getValue(tenantId, { versionId: credentialId });
      if (this.cacheTtlMs > 0 && generation === this.generation) {
        if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value as string);
        this.cache.set(cacheKey, { key, expiresAt: this.now() + this.cacheTtlMs });
      }
      return key;
    } catch (error) {
      if (error instanceof SecretStoreError) {
        this.logger.warn('Could not read a credential key for use', { tenantId, credentialId, code: error.code });
      }
      throw error;
    }
  }

  /** Drops cached keys of a tenant (or one credential): called on promote, retire, disable, deletion. */
  forget(tenantId: string, credentialId?: string): void {
    this.generation++;
    if (credentialId !== undefined) {
      this.cache.delete(`${tenantId}\0${credentialId}`);
      return;
    }
    const prefix = `${tenantId}\0`;
    for (const cacheKey of [...this.cache.keys()]) if (cacheKey.startsWith(prefix)) this.cache.delete(cacheKey);
  }

  get cachedCount(): number {
    return this.cache.size;
  }
}

/**
 * The store as the rest of the service sees it: every label move, disable or deletion also
 * drops this process's cached keys for the tenant, so a promoted or disabled version is never
 * served from cache here.
 */
export class CacheInvalidatingSecretStore implements SecretStore {
  constructor(
    private readonly inner: SecretStore,
    private readonly reader: () => SecretReader | undefined,
  ) {}

  get backend(): 'local' | 'aws' {
    return this.inner.backend;
  }

  putPending(tenantId: string, versionId: string, key: ApiKey): Promise<void> {
    return this.inner.putPending(tenantId, versionId, key);
  }
  getValue(tenantId: string, selector: VersionSelector): Promise<{ versionId: string; key: ApiKey }> {
    return this.inner.getValue(tenantId, selector);
  }
  async promote(tenantId: string, versionId: string, expectedCurrentVersionId: string | null): Promise<void> {
    this.reader()?.forget(tenantId);
    try {
      await this.inner.promote(tenantId, versionId, expectedCurrentVersionId);
    } finally {
      this.reader()?.forget(tenantId);
    }
  }
  async retire(tenantId: string, versionId: string): Promise<void> {
    this.reader()?.forget(tenantId);
    try {
      await this.inner.retire(tenantId, versionId);
    } finally {
      this.reader()?.forget(tenantId);
    }
  }
  async disable(tenantId: string, versionId: string): Promise<void> {
    // Before and after: a read racing the disable must not repopulate the cache with the old value.
    this.reader()?.forget(tenantId);
    try {
      await this.inner.disable(tenantId, versionId);
    } finally {
      this.reader()?.forget(tenantId);
    }
  }
  get purgeExpired(): SecretStore['purgeExpired'] {
    const purge = this.inner.purgeExpired?.bind(this.inner);
    if (!purge) return undefined;
    return async (record) => {
      const tenants = await purge(record);
      for (const tenantId of tenants) this.reader()?.forget(tenantId);
      return tenants;
    };
  }
  async scheduleDeletion(tenantId: string, recoveryWindowDays: number): Promise<void> {
    this.reader()?.forget(tenantId);
    try {
      await this.inner.scheduleDeletion(tenantId, recoveryWindowDays);
    } finally {
      this.reader()?.forget(tenantId);
    }
  }
  restore(tenantId: string): Promise<void> {
    return this.inner.restore(tenantId);
  }
  describe(tenantId: string): Promise<SecretDescription | null> {
    return this.inner.describe(tenantId);
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
}
