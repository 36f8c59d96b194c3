import { Client } from 'pg';

/**
 * Active connections as rotation leaves them, each with its active credential: `$1` of each of the
 * prefixes `$2` (tenants `<prefix>-0` … `<prefix>-<$1 − 1>`), activated and last validated `$3`
 * (an interval) ago. For a pg `Client` or a TypeORM `DataSource`, whichever the bench holds.
 */
export const ACTIVE_CONNECTIONS = `
  WITH t AS (SELECT p || '-' || g AS tenant_id, gen_random_uuid() AS id FROM unnest($2::text[]) p, generate_series(0, $1 - 1) g),
  cred AS (
    INSERT INTO credentials (id, tenant_id, submission_id, secret_version_id, last4, fingerprint, status, company_id, activated_at)
    SELECT id, tenant_id, gen_random_uuid(), id::text, lpad((random() * 9999)::int::text, 4, '0'), repeat('0', 64), 'active', 'company-' || tenant_id, now() - $3::interval
    FROM t RETURNING tenant_id, id)
  INSERT INTO connections (tenant_id, status, company_id, active_credential_id, activated_at, last_validated_at, updated_at)
  SELECT tenant_id, 'active', 'company-' || tenant_id, id, now() - $3::interval, now() - $3::interval, now() - $3::interval FROM cred`;

/**
 * `count` healthy tenants of each prefix (`<prefix>-0` …), activated a day ago, with the health
 * rows the monitor creates on activation and the statistics autovacuum's analyze gives a running
 * deployment. Answers each tenant's active credential.
 */
export async function seedHealthyTenants(db: Client, count: number, prefixes: string[]): Promise<Map<string, string>> {
  await db.query(ACTIVE_CONNECTIONS, [count, prefixes, '1 day']);
  await db.query(
    `INSERT INTO connection_health (tenant_id, credential_id, state, since, auth_failures, next_probe_at, last_validated_at, updated_at)
     SELECT tenant_id, active_credential_id, 'healthy', now(), 0, now() + interval '12 hours', last_validated_at, now() FROM connections`,
  );
  await db.query('ANALYZE');
  const { rows } = await db.query<{ tenant_id: string; active_credential_id: string }>(`SELECT tenant_id, active_credential_id FROM connections`);
  return new Map(rows.map((r) => [r.tenant_id, r.active_credential_id]));
}

/** A whole-number argument between 1 and `max`, `fallback` when not given. */
export function positiveInteger(value: string | undefined, fallback: number, max: number): number {
  const n = Number(value ?? fallback);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`expected an integer between 1 and ${max}, got ${value}`);
  return n;
}
