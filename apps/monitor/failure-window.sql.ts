/**
 * The statements on the hot path of an auth failure (ADR 0011), run as named prepared statements
 * by `ConnectionHealthRepository` only. So that a batch costs one round trip, `RECORD_FAILURES`
 * transcribes rules of `health-decisions.ts` into SQL — which failures count against the active
 * key (`countsAgainstActive`), which rows describe an old key (`describesOldKey`) — and where the
 * failure window starts: the latest of now − window, the key's activation and its last validation.
 * `connection-health.repository.spec.ts` checks they agree (ADR 0029).
 */

/** $1 tenant, $2 window seconds: the tenant's health row with the lifecycle facts it is judged by, locked so replicas decide one after the other. */
export const LOCK_HEALTH = `
  SELECT h.tenant_id AS "tenantId", h.credential_id AS "credentialId", h.state, h.reason,
         h.incident_id AS "incidentId", h.alerted_incident_id AS "alertedIncidentId",
         c.status AS "connectionStatus", c.active_credential_id AS "activeCredentialId", c.company_id AS "companyId",
         coalesce(h.last_validated_at > now() - make_interval(secs => $2), false) AS "recentlyValidated",
         (SELECT id FROM provider_incidents WHERE closed_at IS NULL LIMIT 1) AS "openProviderIncidentId"
  FROM connection_health h JOIN connections c ON c.tenant_id = h.tenant_id
  WHERE h.tenant_id = $1
  FOR UPDATE OF h`;

/**
 * Whether the window a health row kept from its last count still holds for this count (ADR 0059):
 * counted for the active key from a start no later than this one, and its oldest failure still in
 * the window, so none has left it. In `RECORD_FAILURES`, over the health row `h`, its connection `c`
 * and this window's start `w.start`; bench:window puts `false` in its place to measure the
 * statement counting every window again.
 */
export const KEPT_WINDOW = `coalesce(h.window_credential_id = c.active_credential_id AND h.window_start_at <= w.start
                   AND (h.window_failures = 0 OR h.window_oldest_at > w.start), false)`;

/**
 * Records failures and counts their windows, a batch's or one failure's (ADR 0035): $1 event ids,
 * $2 tenants, $3 reported credentials, $4 statuses, $5 sources, $6 endpoints, $7 observed at (each
 * clamped to now), $8 window seconds. Locks the rows in one order (byte order of the tenant id, as
 * the event server sorts). A row it had to wait for may have been changed by the holder after the
 * statement's snapshot, which then misses the failures the holder committed (ADR 0041): the row's
 * version differs from the snapshot's, and the statement writes nothing and answers `stale` (the
 * caller, now holding the locks, runs it again with a fresh snapshot). Otherwise it records every
 * failure with whether it counts, and gives each failure the window it would have had had the
 * tenant's failures been recorded one by one in order of observation (then arrival): the failures
 * before the batch, plus those of the batch up to it. The failures before the batch are the window
 * the row kept from the last count while all of them are still in it, else counted again from
 * `auth_failures` (ADR 0059). Writes each tenant's final count and the window it counted. One row
 * per failure of a tenant whose row is in place; a failure of a tenant without one (or with one
 * for an old key) is left out, for the caller to repair and record again. Each row also carries
 * the tenant's share of the provider signal (ProviderIncidentRepository.signal) before and after
 * the batch.
 */
export const RECORD_FAILURES = `
  WITH input AS (
    SELECT t.event_id, t.tenant_id, t.credential_id, t.status, t.source, t.endpoint, least(t.reported_at, now()) AS observed_at, t.arrival
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::int[], $5::text[], $6::text[], $7::timestamptz[])
         WITH ORDINALITY AS t(event_id, tenant_id, credential_id, status, source, endpoint, reported_at, arrival)
  ), h AS MATERIALIZED (
    -- The rows in place, locked in one order, with each tenant's window before the batch.
    SELECT h.tenant_id, h.xmin::text AS row_version, h.credential_id AS h_credential, h.state, h.reason, h.incident_id, h.alerted_incident_id, h.last_auth_failure_at, h.updated_at,
           c.status AS connection_status, c.active_credential_id, c.company_id,
           (c.status = 'active' AND h.credential_id = c.active_credential_id) AS row_counts,
           w.start AS window_start,
           coalesce(h.last_validated_at > now() - make_interval(secs => $8), false) AS recently_validated,
           (SELECT id FROM provider_incidents WHERE closed_at IS NULL LIMIT 1) AS open_provider_incident_id,
           CASE WHEN k.kept THEN h.window_failures ELSE p.n END AS prior_n,
           CASE WHEN k.kept THEN h.window_forbidden ELSE p.forbidden END AS prior_forbidden,
           CASE WHEN k.kept THEN h.window_oldest_at ELSE p.oldest END AS prior_oldest,
           CASE WHEN k.kept THEN h.window_newest_at ELSE p.newest END AS prior_newest
    FROM connection_health h
    JOIN connections c ON c.tenant_id = h.tenant_id
    CROSS JOIN LATERAL (SELECT greatest(now() - make_interval(secs => $8), c.activated_at, h.last_validated_at) AS start) w
    -- The window counted last still holds (ADR 0059): counted for this key from a start no later
    -- than this one, and its oldest failure is still in the window, so none has left it.
    CROSS JOIN LATERAL (SELECT ${KEPT_WINDOW} AS kept) k
    CROSS JOIN LATERAL (
      -- Otherwise counted again (\`NOT k.kept\` is decided before the index is read).
      SELECT count(*)::int AS n, (count(*) FILTER (WHERE f.status = 403))::int AS forbidden, min(f.observed_at) AS oldest, max(f.observed_at) AS newest
      FROM auth_failures f
      WHERE NOT k.kept AND f.tenant_id = h.tenant_id AND f.observed_at > w.start AND f.counts_against_active
        AND (f.credential_id = c.active_credential_id OR f.credential_id IS NULL)) p
    WHERE h.tenant_id = ANY (ARRAY(SELECT DISTINCT tenant_id FROM input))
      AND NOT (c.status = 'active' AND h.credential_id IS DISTINCT FROM c.active_credential_id)
    ORDER BY h.tenant_id COLLATE "C"
    FOR UPDATE OF h
  ), stale AS (
    -- A row changed after this statement's snapshot (the holder of its lock committed meanwhile).
    SELECT count(*) > 0 AS stale FROM h JOIN connection_health s ON s.tenant_id = h.tenant_id WHERE s.xmin::text <> h.row_version
  ), e AS (
    SELECT h.*, i.event_id, i.credential_id, i.status, i.source, i.endpoint, i.observed_at, i.arrival, (h.row_counts AND (i.credential_id IS NULL OR i.credential_id = h.active_credential_id)) AS counts
    FROM input i JOIN h USING (tenant_id)
  ), ins AS (
    INSERT INTO auth_failures (event_id, tenant_id, credential_id, status, source, endpoint, counts_against_active, observed_at)
    SELECT e.event_id, e.tenant_id, e.credential_id, e.status, e.source, e.endpoint, e.counts, e.observed_at
    FROM e WHERE NOT (SELECT stale FROM stale) ORDER BY e.tenant_id COLLATE "C", e.observed_at, e.arrival
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
  ), fresh AS (
    -- A failure adds to the window when it counts, falls in it, and was not recorded before
    -- (IN, not = ANY of an array: looked up in a hash of the inserted ids, not searched through them).
    SELECT e.*, (e.counts AND e.observed_at > e.window_start AND e.event_id IN (SELECT event_id FROM ins)) AS adds FROM e
  ), win AS (
    SELECT fresh.*,
           fresh.prior_n + count(*) FILTER (WHERE fresh.adds) OVER w AS failures,
           fresh.prior_forbidden + count(*) FILTER (WHERE fresh.adds AND fresh.status = 403) OVER w AS forbidden,
           row_number() OVER w AS seq,
           bool_or(fresh.counts) OVER t AS updated,
           least(fresh.prior_oldest, min(fresh.observed_at) FILTER (WHERE fresh.adds) OVER t) AS oldest_after,
           greatest(fresh.prior_newest, max(fresh.observed_at) FILTER (WHERE fresh.adds) OVER t) AS newest_after
    FROM fresh
    WINDOW w AS (PARTITION BY fresh.tenant_id ORDER BY fresh.observed_at, fresh.arrival ROWS UNBOUNDED PRECEDING),
           t AS (PARTITION BY fresh.tenant_id)
  ), upd AS (
    UPDATE connection_health h
    SET auth_failures = t.failures, last_auth_failure_at = greatest(h.last_auth_failure_at, t.newest_after), updated_at = now(),
        window_credential_id = t.active_credential_id, window_start_at = t.window_start, window_failures = t.failures,
        window_forbidden = t.forbidden, window_oldest_at = t.oldest_after, window_newest_at = t.newest_after
    FROM (SELECT tenant_id, active_credential_id, window_start, oldest_after, newest_after, max(failures)::int AS failures, max(forbidden)::int AS forbidden
          FROM win WHERE counts GROUP BY tenant_id, active_credential_id, window_start, oldest_after, newest_after) t
    WHERE h.tenant_id = t.tenant_id AND NOT (SELECT stale FROM stale)
  )
  SELECT event_id AS "eventId", tenant_id AS "tenantId", credential_id AS "reportedCredentialId",
         CASE WHEN counts THEN failures ELSE 0 END::int AS failures,
         CASE WHEN counts THEN forbidden ELSE 0 END::int AS forbidden,
         h_credential AS "credentialId", state, reason, incident_id AS "incidentId", alerted_incident_id AS "alertedIncidentId",
         connection_status AS "connectionStatus", active_credential_id AS "activeCredentialId", company_id AS "companyId",
         recently_validated AS "recentlyValidated", open_provider_incident_id AS "openProviderIncidentId",
         (row_counts AND coalesce(last_auth_failure_at > now() - make_interval(secs => $8), false)) AS "failingBefore",
         (row_counts AND coalesce(reason = 'pleo_unreachable' AND updated_at > now() - make_interval(secs => $8), false)) AS "unreachableBefore",
         (row_counts AND coalesce(CASE WHEN updated THEN greatest(last_auth_failure_at, newest_after) ELSE last_auth_failure_at END > now() - make_interval(secs => $8), false)) AS "failingAfter",
         (row_counts AND coalesce(reason = 'pleo_unreachable' AND (updated OR updated_at > now() - make_interval(secs => $8)), false)) AS "unreachableAfter",
         (SELECT stale FROM stale) AS stale
  FROM win
  ORDER BY tenant_id COLLATE "C", seq`;

/** Failures with no current row to count against, kept for review only (arrays of columns). */
export const RECORD_IGNORED_FAILURES = `INSERT INTO auth_failures (event_id, tenant_id, credential_id, status, source, endpoint, counts_against_active, observed_at)
       SELECT t.event_id, t.tenant_id, t.credential_id, t.status, t.source, t.endpoint, false, least(t.observed_at, now())
       FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::int[], $5::text[], $6::text[], $7::timestamptz[])
            AS t(event_id, tenant_id, credential_id, status, source, endpoint, observed_at)
       ON CONFLICT (event_id) DO NOTHING`;

/** One failure with no current row to count against, kept for review only. */
export const RECORD_IGNORED_FAILURE = `INSERT INTO auth_failures (event_id, tenant_id, credential_id, status, source, endpoint, counts_against_active, observed_at)
       VALUES ($1, $2, $3, $4, $5, $6, false, least($7::timestamptz, now()))
       ON CONFLICT (event_id) DO NOTHING`;

/** Forgets failures older than the retention ($1 days), 10,000 at a time. */
export const PRUNE_FAILURES = `DELETE FROM auth_failures WHERE id IN (
         SELECT id FROM auth_failures WHERE observed_at < now() - make_interval(days => $1) LIMIT 10000)
       RETURNING 1`;
