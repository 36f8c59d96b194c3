import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { pgPool } from '@keyward/persistence';
import { ConnectionState } from './forwarding-decision';

interface Cached {
  state: ConnectionState;
  expiresAt: number;
}

const MAX_CACHED = 50_000;

const STATE_SQL = `
  SELECT c.status AS lifecycle, c.active_credential_id::text AS "activeCredentialId",
         CASE WHEN h.credential_id = c.active_credential_id THEN h.state END AS health,
         (c.tenant_id IS NOT NULL OR EXISTS (SELECT 1 FROM submissions s WHERE s.tenant_id = t.id)) AS known,
         EXISTS (SELECT 1 FROM newest_pending_submissions s
                  WHERE s.tenant_id = t.id
                    AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.credential_id = s.credential_id)) AS "pendingSubmission"
    FROM (SELECT $1::text AS id) t
    LEFT JOIN connections c ON c.tenant_id = t.id
    LEFT JOIN connection_health h ON h.tenant_id = t.id`;

/**
 * A tenant's connection row and the health of its active credential, trusted for
 * `KEYWARD_GATEWAY_STATE_CACHE_MS` (default 1 s) so a busy tenant costs one query a second, not
 * one per call. Staleness is safe: a compromise is caught on every call by the revocation check
 * when the key is read, and a 401 drops the entry at once.
 */
@Injectable()
export class ConnectionStateRepository {
  private readonly cache = new Map<string, Cached>();
  private readonly loading = new Map<string, Promise<ConnectionState>>();
  private readonly ttlMs: number;
  private readonly pool: Pool | undefined;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) config: KeywardConfig,
  ) {
    this.ttlMs = config.gateway.stateCacheMs;
    this.pool = pgPool(dataSource);
  }

  /** Resolves from the cache when fresh; one query per tenant at a time otherwise. */
  state(tenantId: string): ConnectionState | Promise<ConnectionState> {
    const cached = this.cache.get(tenantId);
    if (cached && cached.expiresAt > Date.now()) return cached.state;
    let loading = this.loading.get(tenantId);
    if (!loading) {
      loading = this.load(tenantId).finally(() => this.loading.delete(tenantId));
      this.loading.set(tenantId, loading);
    }
    return loading;
  }

  forget(tenantId: string): void {
    this.cache.delete(tenantId);
  }

  private async load(tenantId: string): Promise<ConnectionState> {
    const rows = (
      this.pool ? (await this.pool.query({ name: 'gateway_connection_state', text: STATE_SQL, values: [tenantId] })).rows : await this.dataSource.query(STATE_SQL, [tenantId])
    ) as ConnectionState[];
    const row = rows[0];
    const state: ConnectionState = {
      known: Boolean(row?.known),
      lifecycle: row?.lifecycle ?? null,
      activeCredentialId: row?.activeCredentialId ?? null,
      health: row?.health ?? null,
      pendingSubmission: Boolean(row?.pendingSubmission),
    };
    if (this.ttlMs > 0) {
      this.cache.delete(tenantId);
      this.cache.set(tenantId, { state, expiresAt: Date.now() + this.ttlMs });
      if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
    }
    return state;
  }
}
