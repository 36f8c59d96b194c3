/** How long a replica may use a leased block before what is left goes back. */
export const LEASE_TTL_MS = 2_000;
/** Slack for a call leaving the gateway late in its lease and reaching Pleo a little later. */
const TRANSIT_MARGIN_MS = 500;
/**
 * The window leases are counted over. A call is sent within LEASE_TTL_MS of its lease, so the
 * calls reaching Pleo in any 60 s come from leases granted within 60 s + TTL + margin: counting
 * leases over that longer window keeps every 60 s of calls within the budget (ADR 0021).
 */
export const LEASE_WINDOW_MS = 60_000 + LEASE_TTL_MS + TRANSIT_MARGIN_MS;

/**
 * Tokens to ask for: what this replica used for the credential over the last second, scaled to
 * a lease's lifetime with some headroom, at least 1 and at most a twentieth of the budget, so a
 * busy replica does not go back to Postgres for every call and an idle one holds nothing back.
 */
export function leaseSize(callsLastSecond: number, waiting: number, budgetPerMinute: number): number {
  const expected = Math.ceil(callsLastSecond * (LEASE_TTL_MS / 1000) * 1.25);
  const cap = Math.max(1, Math.floor(budgetPerMinute / 20));
  return Math.max(1, Math.min(cap, Math.max(expected, waiting)));
}
