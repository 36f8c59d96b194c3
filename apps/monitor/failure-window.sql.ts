/**
 * The two statements on the hot path of an auth failure (ADR 0011), run as named prepared
 * statements by `ConnectionHealthRepository` only. So that an event costs one round trip, the
 * second one transcribes rules of `health-decisions.ts` into SQL — which failures count against
 * the active key (`countsAgainstActive`), which rows describe an old key (`describesOldKey`) — and
 * where the failure window starts: the latest of now − window, the key's activation and its last
 * validation. `connection-health.repository.spec.ts` checks they agree (ADR 0029).
 */

/** The tenant's health row with the lifecycle facts it is judged by, locked so replicas decide one after the other. */
const lockedRow = (tenant: string, windowSeconds: string) => `
  SELECT h.tenant_id AS "tenantId", h.credential_id AS "credentialId", h.state, h.reason,
         h.incident_id AS "incidentId", h.alerted_incident_id AS "alertedIncidentId",
         c.status AS "connectionStatus", c.active_credential_id AS "activeCredentialId", c.company_id AS "companyId",
         greatest(now() - make_interval(secs => ${windowSeconds}), c.activated_at, h.last_validated_at) AS window_start,
         coalesce(h.last_validated_at > now() - make_interval(secs => ${windowSeconds}), false) AS "recentlyValidated",
         (SELECT id FROM provider_incidents WHERE closed_at IS NULL LIMIT 1) AS "openProviderIncidentId"
  FROM connection_health h JOIN connections c ON c.tenant_id = h.tenant_id
  WHERE h.tenant_id = ${tenant}
  FOR UPDATE OF h`;

/** $1 tenant, $2 window seconds. */
export const LOCK_HEALTH = lockedRow('$1', '$2');

/**
 * Locks the row, records the failure ($1 event, $2 tenant, $3 reported credential, $4 status,
 * $5 source, $6 endpoint, $7 observed at, clamped to now so a skewed producer cannot keep a
 * failure in the window), counts the window ($8 seconds) and writes the count to the row. No row
 * when the tenant has no health row or one for an old key: the caller repairs it and asks again.
 */
export const RECORD_FAILURE = `
  WITH h AS (${lockedRow('$2', '$8')}
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
  SELECT d."tenantId", d."credentialId", d.state, d.reason, d."incidentId", d."alertedIncidentId", d."connectionStatus",
         d."activeCredentialId", d."companyId", d."recentlyValidated", d."openProviderIncidentId", d.counts,
         win.failures, win.forbidden, (SELECT count(*) FROM upd)::int AS updated
  FROM d CROSS JOIN win`;
