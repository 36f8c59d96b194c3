import { LEASE_TTL_MS, LEASE_WINDOW_MS, leaseSize } from './lease-sizing';

describe('leaseSize', () => {
  it.each([
    [0, 1, 540, 1], // idle: one token, nothing held back from other replicas
    [0, 5, 540, 5], // five calls waiting together
    [4, 1, 540, 10], // 4/s → a 2 s lease with headroom
    [100, 1, 540, 27], // never more than a twentieth of the budget
    [1_000, 1, 1_000_000, 2_500],
    [10, 1, 10, 1],
  ])('%i calls/s, %i waiting, budget %i/min → %i', (rate, waiting, budget, expected) => {
    expect(leaseSize(rate, waiting, budget)).toBe(expected);
  });

  it('counts leases over a window longer than a minute by the lease lifetime and some transit', () => {
    expect(LEASE_WINDOW_MS).toBeGreaterThan(60_000 + LEASE_TTL_MS);
  });
});
