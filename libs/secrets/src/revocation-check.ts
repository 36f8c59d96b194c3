import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { oneOrMany, pgPool, revocationOf } from '@keyward/persistence';
import { SecretStoreError } from './secret-store';

export interface Revocation {
  reason: string;
}

/**
 * Answers whether a credential is revoked, from the `revocations` table as committed when the
 * question was asked — never from anything older. SecretReader asks it before every read.
 */
export interface RevocationCheck {
  find(credentialId: string, tenantId: string): Promise<Revocation | undefined>;
}

function unavailable(error: unknown, what: string): SecretStoreError {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown';
  return new SecretStoreError('unavailable', `Could not check revocations for ${what} (database error ${code})`, true);
}

/** One query per read: the workers' check, where reads are few. */
export class QueryRevocationCheck implements RevocationCheck {
  constructor(private readonly dataSource: DataSource) {}

  async find(credentialId: string, tenantId: string): Promise<Revocation | undefined> {
    try {
      return await revocationOf(this.dataSource.manager, credentialId);
    } catch (error) {
      throw unavailable(error, `credential ${credentialId} of tenant ${tenantId}`);
    }
  }
}

interface Waiter {
  credentialId: string;
  resolve(revocation: Revocation | undefined): void;
  reject(error: unknown): void;
}

/** Largest batch of one query; the rest wait for the next. */
const MAX_BATCH = 2_000;

/**
 * For many reads at once (the gateway): reads that arrive while a query is out wait for the next
 * query, which answers all of them. A query is only ever sent after every read it answers had
 * arrived, so its snapshot includes every revocation committed before those reads began — the
 * same guarantee as one query per read, at one query per round trip instead of one per call.
 */
export class CoalescedRevocationCheck implements RevocationCheck {
  private waiting: Waiter[] = [];
  private inFlight = false;
  private readonly pool: Pool | undefined;

  constructor(private readonly dataSource: DataSource) {
    // The driver's pg pool directly: a named prepared statement without TypeORM's query runner.
    this.pool = pgPool(dataSource);
  }

  find(credentialId: string): Promise<Revocation | undefined> {
    return new Promise<Revocation | undefined>((resolve, reject) => {
      this.waiting.push({ credentialId, resolve, reject });
      if (!this.inFlight) this.flush();
    });
  }

  private flush(): void {
    const batch = this.waiting.length <= MAX_BATCH ? this.waiting : this.waiting.slice(0, MAX_BATCH);
    this.waiting = this.waiting.length <= MAX_BATCH ? [] : this.waiting.slice(MAX_BATCH);
    this.inFlight = true;
    const ids = [...new Set(batch.map((w) => w.credentialId))];
    this.query(ids)
      .then((rows) => {
        const byId = new Map(rows.map((r) => [r.credential_id, { reason: r.reason }]));
        for (const waiter of batch) waiter.resolve(byId.get(waiter.credentialId));
      })
      .catch((error: unknown) => {
        const failure = unavailable(error, `${ids.length} credential(s)`);
        for (const waiter of batch) waiter.reject(failure);
      })
      .finally(() => {
        this.inFlight = false;
        if (this.waiting.length > 0) this.flush();
      });
  }

  private async query(ids: string[]): Promise<{ credential_id: string; reason: string }[]> {
    // One id (a lone call, the usual case unloaded) in a form of its own.
    const statement = oneOrMany(
      ids,
      { name: 'revocations_one', text: 'SELECT credential_id::text, reason FROM revocations WHERE credential_id = $1::uuid' },
      { name: 'revocations_any', text: 'SELECT credential_id::text, reason FROM revocations WHERE credential_id = ANY($1::uuid[])' },
    );
    if (this.pool) return (await this.pool.query(statement)).rows as { credential_id: string; reason: string }[];
    return await this.dataSource.query<{ credential_id: string; reason: string }[]>(statement.text, statement.values);
  }
}
