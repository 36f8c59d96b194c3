/**
 * Errors that say a dependency (Postgres, the broker, the secret backend) is unavailable, not that
 * the event is wrong. An event failing only for these is retried at the slowest tier for as long
 * as the outage lasts (up to a day), instead of being parked after the usual tiers.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** Postgres SQLSTATE classes and codes that mean "not now": connection (08), resources (53), shutdown (57P0x), lock timeout/deadlock. */
function isTransientSqlState(code: string): boolean {
  return /^08/.test(code) || /^53/.test(code) || /^57P0[1-4]$/.test(code) || code === '40001' || code === '40P01' || code === '55P03';
}

export const DEPENDENCY_OUTAGE_RETRY_MS = 24 * 3_600_000;

export function isDependencyUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 4) return false;
  const e = error as { code?: unknown; transient?: unknown; message?: unknown; cause?: unknown; driverError?: unknown; name?: unknown };
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || isTransientSqlState(e.code))) return true;
  // SecretStoreError marks throttling, 5xx and network failures as transient.
  if (e.name === 'SecretStoreError' && e.transient === true) return true;
  if (typeof e.message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e.message)) return true;
  // TypeORM wraps the driver's error; causes carry the original.
  return isDependencyUnavailable(e.driverError, depth + 1) || isDependencyUnavailable(e.cause, depth + 1);
}
