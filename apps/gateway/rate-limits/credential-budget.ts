import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { KeywardLogger, PeriodicTask } from '@keyward/observability';
import { pgPool } from '@keyward/persistence';
import { LEASE_TTL_MS, LEASE_WINDOW_MS, leaseSize } from './lease-sizing';

interface Lease {
  id: string;
  granted: number;
  remaining: number;
  expiresAt: number;
  timer: NodeJS.Timeout;
}

interface Demand {
  second: number;
  current: number;
  previous: number;
}

export type BudgetAnswer = { allowed: true } | { allowed: false; retryAfterSeconds: number };

const ALLOWED: BudgetAnswer = { allowed: true };
/** Upper bound on credentials remembered, so many tenants cannot grow the heap without limit. */
const MAX_TRACKED = 50_000;
const PRUNE_EVERY_MS = 10 * 60_000;
/** Lease rounds one call may wait through before it is refused while tokens remain elsewhere. */
const MAX_ROUNDS = 12;

/**
 * The per-credential call budget (`KEYWARD_GATEWAY_RATE_PER_MINUTE`) shared by every replica:
 * tokens are leased in blocks from Postgres (`gateway_lease_tokens`) and spent from memory, so
 * most calls cost no round trip; unused tokens go back when a lease ends (ADR 0021). Fails
 * closed: when Postgres cannot grant, the call is not sent.
 */
@Injectable()
export class CredentialBudget implements OnApplicationShutdown {
  private readonly leases = new Map<string, Lease>();
  private readonly acquiring = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, number>();
  private readonly deniedUntil = new Map<string, number>();
  private readonly demand = new Map<string, Demand>();
  private readonly pool: Pool | undefined;
  private readonly budget: number;
  private readonly pruner: PeriodicTask;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) config: KeywardConfig,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {
    this.budget = config.gateway.ratePerMinute;
    this.pool = pgPool(dataSource);
    // Each grant prunes its own credential's old leases; this clears credentials no longer called.
    this.pruner = new PeriodicTask({
      round: async () => void (await this.dataSource.query(`DELETE FROM gateway_rate_leases WHERE leased_at < now() - interval '1 hour'`)),
      intervalMs: PRUNE_EVERY_MS,
      startImmediately: false,
      onFailure: (err) => this.logger.warn('Could not prune old call-budget leases', { err }),
      backoff: { initialMs: PRUNE_EVERY_MS, maxMs: PRUNE_EVERY_MS },
    });
    this.pruner.start();
  }

  /** Spends one token for a call about to be sent, leasing more when this replica has none. */
  async take(credentialId: string): Promise<BudgetAnswer> {
    this.countDemand(credentialId);
    // A burst larger than one lease needs several rounds; each round either grants tokens or
    // records a denial (answered below), so the bound only stops a pathological spin.
    for (let attempt = 0; attempt < MAX_ROUNDS; attempt++) {
      const now = Date.now();
      const lease = this.leases.get(credentialId);
      if (lease && lease.expiresAt > now && lease.remaining > 0) {
        lease.remaining -= 1;
        return ALLOWED;
      }
      const denied = this.deniedUntil.get(credentialId);
      if (denied !== undefined) {
        if (denied > now) return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((denied - now) / 1000)) };
        this.deniedUntil.delete(credentialId);
      }
      await this.acquire(credentialId);
    }
    // Other calls on this replica took the fresh tokens first.
    const denied = this.deniedUntil.get(credentialId);
    return { allowed: false, retryAfterSeconds: denied ? Math.max(1, Math.ceil((denied - Date.now()) / 1000)) : 1 };
  }

  private acquire(credentialId: string): Promise<void> {
    this.waiting.set(credentialId, (this.waiting.get(credentialId) ?? 0) + 1);
    let pending = this.acquiring.get(credentialId);
    if (!pending) {
      // Started a turn later, so every call already waiting is counted in the lease's size.
      pending = Promise.resolve()
        .then(() => this.lease(credentialId))
        .finally(() => {
          this.acquiring.delete(credentialId);
          this.waiting.delete(credentialId);
        });
      this.acquiring.set(credentialId, pending);
    }
    return pending;
  }

  private async lease(credentialId: string): Promise<void> {
    const wanted = leaseSize(this.callsLastSecond(credentialId), this.waiting.get(credentialId) ?? 1, this.budget);
    // Measured before asking: the lease is granted later than this, so it never outlives its TTL.
    const askedAt = Date.now();
    const text = 'SELECT lease_id::text AS "leaseId", granted, retry_after_ms AS "retryAfterMs" FROM gateway_lease_tokens($1, $2, $3, $4)';
    const values = [credentialId, wanted, this.budget, LEASE_WINDOW_MS];
    const rows = (this.pool ? (await this.pool.query({ name: 'gateway_lease_tokens', text, values })).rows : await this.dataSource.query(text, values)) as {
      leaseId: string | null;
      granted: number;
      retryAfterMs: number;
    }[];
    const [row] = rows;
    this.releaseLease(credentialId);
    if (!row || row.granted <= 0 || row.leaseId === null) {
      this.remember(this.deniedUntil, credentialId, Date.now() + (row?.retryAfterMs ?? 1_000));
      return;
    }
    const lease: Lease = {
      id: row.leaseId,
      granted: row.granted,
      remaining: row.granted,
      expiresAt: askedAt + LEASE_TTL_MS,
      timer: setTimeout(() => this.releaseLease(credentialId, lease), Math.max(0, askedAt + LEASE_TTL_MS - Date.now())),
    };
    lease.timer.unref();
    this.remember(this.leases, credentialId, lease);
  }

  /** Ends a lease and gives back what it did not spend, so other replicas can use it. */
  private releaseLease(credentialId: string, only?: Lease): void {
    const lease = this.leases.get(credentialId);
    if (!lease || (only && lease !== only)) return;
    this.leases.delete(credentialId);
    clearTimeout(lease.timer);
    lease.expiresAt = 0;
    const unused = lease.remaining;
    lease.remaining = 0;
    if (unused <= 0) return;
    this.dataSource
      .query('UPDATE gateway_rate_leases SET tokens = $2 WHERE id = $1 AND tokens > $2', [lease.id, lease.granted - unused])
      .catch((error: unknown) => this.logger.warn('Could not give back unused call tokens (they count until the window ends)', { err: error }));
  }

  private countDemand(credentialId: string): void {
    const second = Math.floor(Date.now() / 1000);
    const d = this.demand.get(credentialId);
    if (!d) return void this.remember(this.demand, credentialId, { second, current: 1, previous: 0 });
    if (d.second === second) d.current += 1;
    else {
      d.previous = d.second === second - 1 ? d.current : 0;
      d.second = second;
      d.current = 1;
    }
  }

  private callsLastSecond(credentialId: string): number {
    const d = this.demand.get(credentialId);
    if (!d) return 0;
    const second = Math.floor(Date.now() / 1000);
    if (d.second === second) return Math.max(d.current, d.previous);
    return d.second === second - 1 ? d.current : 0;
  }

  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_TRACKED) map.delete(map.keys().next().value as string);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pruner.stop();
    for (const credentialId of [...this.leases.keys()]) this.releaseLease(credentialId);
  }
}
