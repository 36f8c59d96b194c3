import { EntityManager } from 'typeorm';
import { HealthState, preparedQuery } from '@keyward/persistence';

export const HEALTH_STATES: HealthState[] = ['healthy', 'degraded', 'reconnect_required'];

/** A tenant's health row, locked, with the lifecycle facts from `connections` it is judged by. */
export interface LockedHealth {
  tenantId: string;
  credentialId: string;
  state: HealthState;
  reason: string | null;
  since: Date;
  authFailures: number;
  incidentId: string | null;
  alertedIncidentId: string | null;
  connectionStatus: 'not_connected' | 'active' | 'disabled' | 'uninstalled';
  activeCredentialId: string | null;
  companyId: string | null;
  /** Start of the sliding window for this credential, as text to keep microseconds. */
  windowStart: string;
  /** The key was proven to work within the window, so a lone 403 is not enough to degrade it. */
  recentlyValidated: boolean;
  openProviderIncidentId: string | null;
}

export interface FailureWindow {
  failures: number;
  forbidden: number;
  lastFailureAt: Date | null;
}

export interface RecordedFailure {
  eventId: string;
  tenantId: string;
  credentialId: string | null;
  status: number;
  source: string;
  endpoint: string | null;
  observedAt: string;
}

/** Postgres answers UPDATE … RETURNING through TypeORM as [rows, count]; SELECT and INSERT as rows. */
function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') return result[0] as T[];
  return result as T[];
}

/** Where the next probe of a credential falls: a fixed point in the interval, by its id, so probes spread evenly. */
const SPREAD_OFFSET = `(('x' || substr(md5(c.active_credential_id::text), 1, 8))::bit(32)::bigint / 4294967296.0)`;

/**
 * Queries on `connection_health` and `auth_failures` (the monitor owns both). Every method runs in
 * the caller's transaction. A health row counts only while its credential is the tenant's active
 * one; `resetToActiveCredential` starts a fresh row when that changed.
 */
export const ConnectionHealthRepository = {
  /**
   * Locks the tenant's health row (`FOR UPDATE`) so replicas handling failures of the same tenant
   * decide one after the other, and reads everything a decision needs in the same statement.
   */
  async lock(tx: EntityManager, tenantId: string, windowSeconds: number): Promise<LockedHealth | undefined> {
    const [row] = await preparedQuery<LockedHealth>(
      tx,
      'monitor_lock_health',
      `SELECT h.tenant_id AS "tenantId", h.credential_id AS "credentialId", h.state, h.reason, h.since,
              h.auth_failures AS "authFailures", h.incident_id AS "incidentId", h.alerted_incident_id AS "alertedIncidentId",
              c.status AS "connectionStatus", c.active_credential_id AS "activeCredentialId", c.company_id AS "companyId",
              greatest(now() - make_interval(secs => $2), c.activated_at, h.last_validated_at)::text AS "windowStart",
              coalesce(h.last_validated_at > now() - make_interval(secs => $2), false) AS "recentlyValidated",
              (SELECT id FROM provider_incidents WHERE closed_at IS NULL LIMIT 1) AS "openProviderIncidentId"
       FROM connection_health h JOIN connections c ON c.tenant_id = h.tenant_id
       WHERE h.tenant_id = $1
       FOR UPDATE OF h`,
      [tenantId, windowSeconds],
    );
    return row;
  },

  /**
   * Fresh healthy rows for active connections whose health row is missing or belongs to another
   * credential — of one tenant, or of all (the scheduler's repair round). Returns their tenants.
   */
  async startMonitoringActive(tx: EntityManager, probeIntervalSeconds: number, tenantId?: string): Promise<string[]> {
    const rows = (await tx.query(
      `INSERT INTO connection_health (tenant_id, credential_id, state, since, auth_failures, next_probe_at, last_validated_at, updated_at)
       SELECT c.tenant_id, c.active_credential_id, 'healthy', now(), 0,
              now() + make_interval(secs => $1 * ${SPREAD_OFFSET}), coalesce(c.last_validated_at, c.activated_at), now()
       FROM connections c LEFT JOIN connection_health h ON h.tenant_id = c.tenant_id
       WHERE c.status = 'active' AND c.active_credential_id IS NOT NULL AND h.credential_id IS DISTINCT FROM c.active_credential_id
         AND ($2::text IS NULL OR c.tenant_id = $2)
       ON CONFLICT (tenant_id) DO UPDATE SET
         credential_id = EXCLUDED.credential_id, state = 'healthy', reason = NULL, missing_scopes = NULL, since = now(),
         auth_failures = 0, last_auth_failure_at = NULL, incident_id = NULL, alerted_incident_id = NULL,
         revalidate_requested_at = NULL, next_probe_at = EXCLUDED.next_probe_at, last_probe_at = NULL,
         last_validated_at = EXCLUDED.last_validated_at, updated_at = now()
       WHERE connection_health.credential_id IS DISTINCT FROM EXCLUDED.credential_id
       RETURNING tenant_id`,
      [probeIntervalSeconds, tenantId ?? null],
    )) as { tenant_id: string }[];
    return rows.map((r) => r.tenant_id);
  },

  /**
   * Gives an active connection a fresh, healthy row for its active credential when it has none or
   * one for another credential (a new key closes any incident of the old one). Returns the state
   * the replaced row was in, or undefined when nothing changed.
   */
  async resetToActiveCredential(
    tx: EntityManager,
    tenantId: string,
    probeIntervalSeconds: number,
  ): Promise<{ reset: boolean; previousState: HealthState | null }> {
    const previous = (await tx.query(`SELECT state, credential_id FROM connection_health WHERE tenant_id = $1 FOR UPDATE`, [tenantId])) as {
      state: HealthState;
    }[];
    const inserted = await ConnectionHealthRepository.startMonitoringActive(tx, probeIntervalSeconds, tenantId);
    return { reset: inserted.length > 0, previousState: inserted.length > 0 ? (previous[0]?.state ?? null) : null };
  },

  /**
   * Lifecycle facts when the tenant has no health row to lock; for a connection disabled by a
   * compromise, the credential rotation disabled it for.
   */
  async connection(
    tx: EntityManager,
    tenantId: string,
  ): Promise<{ status: string; activeCredentialId: string | null; companyId: string | null; compromisedCredentialId: string | null } | undefined> {
    const [row] = (await tx.query(
      `SELECT status, active_credential_id AS "activeCredentialId", company_id AS "companyId",
              CASE WHEN error_code = 'key_compromised' THEN error_detail->>'credentialId' END AS "compromisedCredentialId"
       FROM connections WHERE tenant_id = $1`,
      [tenantId],
    )) as { status: string; activeCredentialId: string | null; companyId: string | null; compromisedCredentialId: string | null }[];
    return row;
  },

  /** A failure that does not count (old credential, no active connection): kept for review only. */
  async recordIgnoredFailure(tx: EntityManager, failure: RecordedFailure): Promise<void> {
    await tx.query(
      `INSERT INTO auth_failures (event_id, tenant_id, credential_id, status, source, endpoint, counts_against_active, observed_at)
       VALUES ($1, $2, $3, $4, $5, $6, false, least($7::timestamptz, now()))
       ON CONFLICT (event_id) DO NOTHING`,
      [failure.eventId, failure.tenantId, failure.credentialId, failure.status, failure.source, failure.endpoint, failure.observedAt],
    );
  },

  /**
   * Records a failure of the active credential, counts the window and writes the count to the
   * health row, in one statement (one round trip per event on the hot path): failures of this
   * credential (or naming none) observed after `windowStart`. A clock ahead of ours is clamped to
   * now, so a skewed producer cannot keep a failure in the window forever.
   */
  async recordAndCount(tx: EntityManager, failure: RecordedFailure, activeCredentialId: string, windowStart: string): Promise<FailureWindow> {
    const [row] = await preparedQuery<FailureWindow>(
        tx,
        'monitor_record_failure',
        `WITH ins AS (
           INSERT INTO auth_failures (event_id, tenant_id, credential_id, status, source, endpoint, counts_against_active, observed_at)
           VALUES ($1, $2, $3, $4, $5, $6, true, least($7::timestamptz, now()))
           ON CONFLICT (event_id) DO NOTHING
           RETURNING status, observed_at
         ), fresh AS (SELECT * FROM ins WHERE observed_at > $9::timestamptz),
         prior AS (
           SELECT count(*)::int AS n, (count(*) FILTER (WHERE status = 403))::int AS forbidden, max(observed_at) AS last
           FROM auth_failures
           WHERE tenant_id = $2 AND counts_against_active AND (credential_id = $8 OR credential_id IS NULL) AND observed_at > $9::timestamptz
         ), win AS (
           SELECT prior.n + (SELECT count(*) FROM fresh)::int AS failures,
                  prior.forbidden + (SELECT count(*) FROM fresh WHERE status = 403)::int AS forbidden,
                  greatest(prior.last, (SELECT max(observed_at) FROM fresh)) AS last
           FROM prior
         )
         UPDATE connection_health h
         SET auth_failures = win.failures, last_auth_failure_at = greatest(h.last_auth_failure_at, win.last), updated_at = now()
         FROM win WHERE h.tenant_id = $2
         RETURNING win.failures, win.forbidden, win.last AS "lastFailureAt"`,
        [
          failure.eventId,
          failure.tenantId,
          failure.credentialId,
          failure.status,
          failure.source,
          failure.endpoint,
          failure.observedAt,
          activeCredentialId,
          windowStart,
        ],
    );
    return row;
  },

  /**
   * The hot path of an auth failure in ONE statement: lock the tenant's health row, record the
   * failure (counting against the active credential or not, by the same rule as `lock` +
   * `recordAndCount`), count the window and write it to the row. Undefined when the tenant has no
   * health row or one for an old credential: the caller then takes the full path, which repairs
   * the row first. One round trip instead of two is what lets the monitor keep up with bursts.
   */
  async lockRecordAndCount(
    tx: EntityManager,
    failure: RecordedFailure,
    windowSeconds: number,
  ): Promise<(LockedHealth & FailureWindow & { counts: boolean }) | undefined> {
    const [row] = await preparedQuery<LockedHealth & FailureWindow & { counts: boolean }>(
      tx,
      'monitor_lock_record_count',
      `WITH h AS (
         SELECT h.tenant_id AS "tenantId", h.credential_id AS "credentialId", h.state, h.reason, h.since,
                h.auth_failures AS "authFailures", h.incident_id AS "incidentId", h.alerted_incident_id AS "alertedIncidentId",
                c.status AS "connectionStatus", c.active_credential_id AS "activeCredentialId", c.company_id AS "companyId",
                greatest(now() - make_interval(secs => $8), c.activated_at, h.last_validated_at) AS window_start,
                coalesce(h.last_validated_at > now() - make_interval(secs => $8), false) AS "recentlyValidated",
                (SELECT id FROM provider_incidents WHERE closed_at IS NULL LIMIT 1) AS "openProviderIncidentId"
         FROM connection_health h JOIN connections c ON c.tenant_id = h.tenant_id
         WHERE h.tenant_id = $2
         FOR UPDATE OF h
       ), d AS (
         SELECT h.*, (h."connectionStatus" = 'active' AND h."credentialId" = h."activeCredentialId"
                      AND ($3::uuid IS NULL OR $3::uuid = h."activeCredentialId")) AS counts
         FROM h
         WHERE NOT (h."connectionStatus" = 'active' AND h."credentialId" IS DISTINCT FROM h."activeCredentialId")
       ), ins AS (
         INSERT INTO auth_failures (event_id, tenant_id, credential_id, status, source, endpoint, counts_against_active, observed_at)
         SELECT $1, $2, $3, $4, $5, $6, d.counts, least($7::timestamptz, now()) FROM d
         ON CONFLICT (event_id) DO NOTHING
         RETURNING status, observed_at, counts_against_active
       ), fresh AS (
         SELECT ins.status, ins.observed_at FROM ins, d WHERE ins.counts_against_active AND ins.observed_at > d.window_start
       ), prior AS (
         SELECT count(*)::int AS n, (count(*) FILTER (WHERE f.status = 403))::int AS forbidden, max(f.observed_at) AS last
         FROM auth_failures f, d
         WHERE d.counts AND f.tenant_id = $2 AND f.counts_against_active
           AND (f.credential_id = d."activeCredentialId" OR f.credential_id IS NULL) AND f.observed_at > d.window_start
       ), win AS (
         SELECT prior.n + (SELECT count(*) FROM fresh)::int AS failures,
                prior.forbidden + (SELECT count(*) FROM fresh WHERE status = 403)::int AS forbidden,
                greatest(prior.last, (SELECT max(observed_at) FROM fresh)) AS last
         FROM prior
       ), upd AS (
         UPDATE connection_health h
         SET auth_failures = win.failures, last_auth_failure_at = greatest(h.last_auth_failure_at, win.last), updated_at = now()
         FROM win, d WHERE h.tenant_id = $2 AND d.counts
         RETURNING h.tenant_id
       )
       SELECT d."tenantId", d."credentialId", d.state, d.reason, d.since, d."authFailures", d."incidentId", d."alertedIncidentId",
              d."connectionStatus", d."activeCredentialId", d."companyId", d.window_start::text AS "windowStart",
              d."recentlyValidated", d."openProviderIncidentId", d.counts,
              win.failures, win.forbidden, win.last AS "lastFailureAt", (SELECT count(*) FROM upd)::int AS updated
       FROM d CROSS JOIN win`,
      [failure.eventId, failure.tenantId, failure.credentialId, failure.status, failure.source, failure.endpoint, failure.observedAt, windowSeconds],
    );
    return row;
  },

  /** Forgets failures older than the retention (they no longer count and incident review is done). */
  async pruneFailures(tx: EntityManager, retentionDays: number): Promise<number> {
    const rows = (await tx.query(
      `DELETE FROM auth_failures WHERE id IN (
         SELECT id FROM auth_failures WHERE observed_at < now() - make_interval(days => $1) LIMIT 10000)
       RETURNING 1`,
      [retentionDays],
    )) as unknown[];
    return rows.length;
  },

  /** last4 of a credential for alerts and audit (credentials once decided, else its submission). */
  async last4(tx: EntityManager, credentialId: string): Promise<string> {
    const [row] = (await tx.query(
      `SELECT coalesce((SELECT last4 FROM credentials WHERE id = $1), (SELECT last4 FROM submissions WHERE credential_id = $1)) AS last4`,
      [credentialId],
    )) as { last4: string | null }[];
    return row?.last4 || '????';
  },

  rowsOf,
};
