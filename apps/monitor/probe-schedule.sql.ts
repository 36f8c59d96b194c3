/** The probe scheduler's statements on `connection_health`, run by ConnectionHealthRepository (its only writer). */

/** Where the next probe of a credential falls: a fixed point in the interval, by its id, so probes spread evenly. */
const SPREAD_OFFSET = `(('x' || substr(md5(c.active_credential_id::text), 1, 8))::bit(32)::bigint / 4294967296.0)`;

/**
 * Fresh healthy rows for active connections whose row is missing or describes another credential,
 * with their first probe spread over the interval ($1 s); of tenant $2, or changed since $3, or all.
 */
export const START_MONITORING_ACTIVE = `INSERT INTO connection_health (tenant_id, credential_id, state, since, auth_failures, next_probe_at, last_validated_at, updated_at)
       SELECT c.tenant_id, c.active_credential_id, 'healthy', now(), 0,
              now() + make_interval(secs => $1 * ${SPREAD_OFFSET}), coalesce(c.last_validated_at, c.activated_at), now()
       FROM connections c LEFT JOIN connection_health h ON h.tenant_id = c.tenant_id
       WHERE c.status = 'active' AND c.active_credential_id IS NOT NULL AND h.credential_id IS DISTINCT FROM c.active_credential_id
         AND ($2::text IS NULL OR c.tenant_id = $2) AND ($3::timestamptz IS NULL OR c.updated_at >= $3)
       ON CONFLICT (tenant_id) DO UPDATE SET
         credential_id = EXCLUDED.credential_id, state = 'healthy', reason = NULL, missing_scopes = NULL, since = now(),
         auth_failures = 0, last_auth_failure_at = NULL, incident_id = NULL, alerted_incident_id = NULL,
         revalidate_requested_at = NULL, next_probe_at = EXCLUDED.next_probe_at, last_probe_at = NULL,
         last_validated_at = EXCLUDED.last_validated_at, updated_at = now()
       WHERE connection_health.credential_id IS DISTINCT FROM EXCLUDED.credential_id
       RETURNING tenant_id`;

/** Healthy tenants that failed during a provider incident (or found Pleo unreachable) probed now; held rows skipped. $1 opened at, $2 window seconds. */
export const PROBE_SOON_AFTER_INCIDENT = `UPDATE connection_health SET next_probe_at = now(), updated_at = now()
       WHERE tenant_id IN (
         SELECT tenant_id FROM connection_health
         WHERE state = 'healthy' AND (last_auth_failure_at >= $1::timestamptz - make_interval(secs => $2) OR reason = 'pleo_unreachable')
         FOR UPDATE SKIP LOCKED)`;

/** Probes asked for in the minute before $1 (or Postgres' now). */
export const PROBES_IN_LAST_MINUTE = `SELECT count(*)::int AS recent FROM connection_health WHERE last_probe_at > coalesce($1::timestamptz, now()) - interval '1 minute'`;

/**
 * Up to $1 due probes of active keys at $2 (or now), skipping held rows. The active-key check is a
 * subquery, not a join: Postgres estimates the join on two correlated columns at one row, and then
 * reads every connection to find the first due probe; as a filter it walks the due index in order
 * and stops at the limit (ADR 0034).
 */
export const DUE_PROBES = `SELECT h.tenant_id AS "tenantId", h.credential_id AS "credentialId", h.state
       FROM connection_health h
       WHERE h.next_probe_at <= coalesce($2::timestamptz, now())
         AND (SELECT c.status = 'active' AND c.active_credential_id = h.credential_id FROM connections c WHERE c.tenant_id = h.tenant_id)
       ORDER BY h.next_probe_at
       LIMIT $1
       FOR UPDATE SKIP LOCKED`;

/** The claimed probes ($1 tenants) asked now ($4, or Postgres' now): each keeps its place in the interval ($2 s); one waiting for an answer is asked again after $3 s. */
export const ADVANCE_PROBES = `WITH clock AS (SELECT coalesce($4::timestamptz, now()) AS now)
       UPDATE connection_health SET last_probe_at = clock.now, revalidate_requested_at = clock.now, updated_at = clock.now,
         next_probe_at = CASE
           WHEN state <> 'healthy' OR reason IN ('pleo_unreachable', 'pleo_rate_limited') THEN clock.now + make_interval(secs => $3)
           WHEN next_probe_at + make_interval(secs => $2) > clock.now THEN next_probe_at + make_interval(secs => $2)
           ELSE clock.now + make_interval(secs => $2) END
       FROM clock
       WHERE tenant_id = ANY($1)`;
