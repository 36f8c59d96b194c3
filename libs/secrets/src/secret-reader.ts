import { DataSource } from 'typeorm';
import { ApiKey } from '@keyward/key-material';
import { KeywardLogger } from '@keyward/observability';
import { LocalSecretStore } from './local-secret-store';
import { QueryRevocationCheck, Revocation, RevocationCheck } from './revocation-check';
import { assertTenantId } from './secret-name';
import { SecretDescription, SecretStore, SecretStoreError, VersionSelector } from './secret-store';

const CREDENTIAL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Upper bound on cached keys, so a burst of tenants cannot grow the heap without limit. */
const MAX_CACHED = 10_000;

interface CachedKey {
  key: ApiKey;
  expiresAt: number;
}

/**
 * The one way to read a key in order to USE it (call Pleo with it). Every call checks the
 * `revocations` table first — a committed revocation wins over any cache, in every process —
 * then a short in-process cache, then the store. Fails closed: if the revocation check cannot
 * run, no key is returned. With the local store, a read the cache cannot answer asks the
 * revocation and the version in one statement (one round trip, the same outcomes).
 */
export class SecretReader {
  private readonly cache = new Map<string, CachedKey>();
  /** Bumped by `forget`, so a read that raced a promote/disable does not cache what it fetched. */
  private generation = 0;
  /** The local store, when it can check the revocation in its own read: one round trip instead of two. */
  private readonly checkedRead?: LocalSecretStore;

  constructor(
    private readonly store: SecretStore,
    dataSource: DataSource,
    private readonly logger: KeywardLogger,
    /** At most 60 s (config.secrets.cacheTtlMs); 0 disables the cache. */
    private readonly cacheTtlMs: number,
    private readonly now: () => number = Date.now,
    /** Per read by default; the gateway answers many reads with one query (CoalescedRevocationCheck). */
    private readonly revocations: RevocationCheck = new QueryRevocationCheck(dataSource),
  ) {
    if (cacheTtlMs < 0 || cacheTtlMs > 60_000) throw new RangeError('Secret cache TTL must be between 0 and 60000 ms');
    // Only with the per-read check on the store's own database, whose guarantee (revocations as
    // committed when asked) the one statement keeps; the gateway's coalesced check stays apart.
    if (store instanceof LocalSecretStore && revocations instanceof QueryRevocationCheck && store.sharesDatabaseWith(revocations.dataSource)) this.checkedRead = store;
  }

  async readForUse(tenantId: string, credentialId: string): Promise<ApiKey> {
    assertTenantId(tenantId);
    if (typeof credentialId !== 'string' || !CREDENTIAL_ID.test(credentialId)) {
      throw new SecretStoreError('invalid_request', 'Credential id must be a UUID');
    }
    const cacheKey = `${tenantId}\0${credentialId}`;
    if (this.checkedRead && !this.cachedKey(cacheKey)) return this.readChecked(this.checkedRead, tenantId, credentialId, cacheKey);
    const revocation = await this.revocations.find(credentialId, tenantId);
    if (revocation) throw this.refuseRevoked(tenantId, credentialId, cacheKey, revocation);
    const cached = this.cachedKey(cacheKey);
    if (cached) return cached;
    this.cache.delete(cacheKey);
    const generation = this.generation;
    try {
      const { key } = await this.store.getValue(tenantId, { versionId: credentialId });
      this.remember(cacheKey, key, generation);
      return key;
    } catch (error) {
      if (error instanceof SecretStoreError) this.logUnreadable(tenantId, credentialId, error);
      throw error;
    }
  }

  /** A key not in the cache, from the local store: the revocation check and the read in one statement, with the outcomes of the two apart. */
  private async readChecked(store: LocalSecretStore, tenantId: string, credentialId: string, cacheKey: string): Promise<ApiKey> {
    this.cache.delete(cacheKey);
    const generation = this.generation;
    const answer = await store.readUnlessRevoked(tenantId, credentialId);
    if ('revocation' in answer) throw this.refuseRevoked(tenantId, credentialId, cacheKey, answer.revocation);
    if ('refused' in answer) {
      this.logUnreadable(tenantId, credentialId, answer.refused);
      throw answer.refused;
    }
    this.remember(cacheKey, answer.key, generation);
    return answer.key;
  }

  private refuseRevoked(tenantId: string, credentialId: string, cacheKey: string, revocation: Revocation): SecretStoreError {
    this.cache.delete(cacheKey);
    this.logger.warn('Refused to read the key of a revoked credential', { tenantId, credentialId, reason: revocation.reason });
    return new SecretStoreError('revoked', `Credential ${credentialId} of tenant ${tenantId} is revoked (${revocation.reason})`);
  }

  private logUnreadable(tenantId: string, credentialId: string, error: SecretStoreError): void {
    this.logger.warn('Could not read a credential key for use', { tenantId, credentialId, code: error.code });
  }

  private cachedKey(cacheKey: string): ApiKey | undefined {
    const cached = this.cache.get(cacheKey);
    return cached && cached.expiresAt > this.now() ? cached.key : undefined;
  }

  /** Caches the key unless caching is off or a `forget` ran since the read began. */
  private remember(cacheKey: string, key: ApiKey, generation: number): void {
    if (this.cacheTtlMs === 0 || generation !== this.generation) return;
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(cacheKey, { key, expiresAt: this.now() + this.cacheTtlMs });
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
