/**
 * Lifecycle transactions open at once in this process, for a pool of `poolSize` connections: a
 * step holds one pooled connection for its transaction and, with the local secret backend,
 * briefly needs a second one for the secret operation; bounding the transactions keeps the pool
 * from being exhausted by transactions all waiting for that second connection. Two per
 * transaction, two kept for the relay and health checks. Steps that arrive while these are busy
 * share the next one and run one after another in it (group commit, ADR 0039).
 */
export function transactionsForPool(poolSize: number): number {
  return Math.max(1, Math.floor((poolSize - 2) / 2));
}
