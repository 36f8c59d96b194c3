/**
 * How big and how long a chaos run is. The short profile fits in `npm test` on a 2-core machine
 * (its broker outage is 8 s instead of 30 s); the long one repeats every phase, larger, until
 * at least 20 minutes have passed. A phase may wait out the validator's 120 s retry tier, so
 * recovery is judged over 200 s (300 s in the long run).
 */
export interface Profile {
  name: 'short' | 'long';
  /** Multiplies the number of tenants in each phase. */
  scale: number;
  rounds: number;
  minDurationMs: number;
  brokerOutageMs: number;
  brokerRestartDownMs: number;
  probeIntervalHours: number;
  recoveryTimeoutMs: number;
  /** `local` (sealed rows in Postgres: the Postgres faults are the secret backend's faults) or `aws` (the emulator, with its own faults). */
  backend: 'local' | 'aws';
}

export const PROFILES: Record<'short' | 'long', Profile> = {
  short: { name: 'short', scale: 0.5, rounds: 1, minDurationMs: 0, brokerOutageMs: 8_000, brokerRestartDownMs: 4_000, probeIntervalHours: 0.03, recoveryTimeoutMs: 200_000, backend: 'local' },
  long: { name: 'long', scale: 4, rounds: 3, minDurationMs: 20 * 60_000, brokerOutageMs: 30_000, brokerRestartDownMs: 5_000, probeIntervalHours: 0.03, recoveryTimeoutMs: 300_000, backend: 'local' },
};
