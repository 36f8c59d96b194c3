import { Inject, Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { returnedRows } from '@keyward/messaging';
import { PipelinedStatement, preparedQuery } from '@keyward/persistence';
import type { ProviderIncidentReason, ProviderSignal } from './health-decisions';

export interface OpenProviderIncident {
  id: string;
  reason: ProviderIncidentReason;
  openedAt: Date;
  affectedTenants: number;
}

/**
 * The only writer of `provider_incidents` (owner: monitor). One incident is open at a time: a
 * partial unique index makes replicas agree. Every method runs in the caller's transaction.
 */
@Injectable()
export class ProviderIncidentRepository {
  private readonly windowSeconds: number;
  private readonly activeCountedFrom: number;
  private readonly share: number;

  constructor(@Inject(KEYWARD_CONFIG) config: KeywardConfig) {
    this.windowSeconds = config.monitor.failureWindowSeconds;
    this.activeCountedFrom = Math.ceil(config.monitor.providerIncidentMinTenants / 2);
    this.share = config.monitor.providerIncidentShare;
  }

  /**
   * How many active tenants' keys failed, or found Pleo unreachable, within the failure window:
   * read by index, from the rows that did, each checked against its connection with one index
   * look-up (a join would read every connection once tenants are many). Active tenants are
   * counted only when failing or unreachable reach half the smallest opening threshold, and then
   * only up to `activeCountCap(failing)`: below the one and beyond the other no decision depends
   * on their number (`decideProviderIncident`). So the signal costs what the failing tenants
   * cost, whatever the number of tenants (ADR 0047).
   */
  async signal(tx: EntityManager): Promise<ProviderSignal> {
    const [row] = await tx.query<ProviderSignal[]>(SIGNAL, this.signalValues());
    return row;
  }

  /**
   * An upper bound of `signal`, cheaper where many fail (ADR 0060): the same counts over every
   * health row in the window, without checking each against its connection (a row of a replaced
   * key or of a connection no longer active is counted too), and the active tenants counted as
   * `signal` would count them for these counts. A decision on it that opens no incident is the
   * decision on `signal` (`ProviderIncidentService.decideOnSignal`).
   */
  async signalBound(tx: EntityManager): Promise<ProviderSignal> {
    const { text, values } = this.signalBoundStatement();
    const [row] = await tx.query<ProviderSignal[]>(text, values);
    return row;
  }

  /**
   * `signalBound` as a statement to send with a transaction's start; it answers one
   * `ProviderSignal` row. Unnamed, so Postgres plans it for its values each time, as the signal:
   * the index reads above depend on the window's bounds.
   */
  signalBoundStatement(): PipelinedStatement {
    return { text: SIGNAL_BOUND, values: this.signalValues() };
  }

  private signalValues(): unknown[] {
    return [this.windowSeconds, this.activeCountedFrom, this.share];
  }

  async findOpen(tx: EntityManager): Promise<OpenProviderIncident | undefined> {
    const [row] = await preparedQuery<OpenProviderIncident>(tx, FIND_OPEN.name, FIND_OPEN.text, FIND_OPEN.values);
    return row;
  }

  /** `findOpen` as a statement to send with a transaction's start; it answers the open incident's row, if any. */
  findOpenStatement(): PipelinedStatement {
    return FIND_OPEN;
  }

  /** Opens an incident; null when another one is open already (then nothing is written). */
  async open(tx: EntityManager, id: string, reason: ProviderIncidentReason, affectedTenants: number): Promise<Date | null> {
    const rows = await tx.query<{ opened_at: Date }[]>(`INSERT INTO provider_incidents (id, reason, affected_tenants) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING opened_at`, [
      id,
      reason,
      affectedTenants,
    ]);
    return rows[0]?.opened_at ?? null;
  }

  async grow(tx: EntityManager, id: string, affectedTenants: number): Promise<void> {
    await tx.query(`UPDATE provider_incidents SET affected_tenants = $2 WHERE id = $1`, [id, affectedTenants]);
  }

  /** Closes the incident; null when another replica closed it first. */
  async close(tx: EntityManager, id: string): Promise<Date | null> {
    const rows = returnedRows<{ closed_at: Date }>(await tx.query(`UPDATE provider_incidents SET closed_at = now() WHERE id = $1 AND closed_at IS NULL RETURNING closed_at`, [id]));
    return rows[0]?.closed_at ?? null;
  }
}

/**
 * The signal over `rows` (the health rows `h` that count): $1 window seconds, $2 failing or
 * unreachable tenants from which active tenants are counted, $3 the opening share (see `signal`).
 */
const signalOver = (rows: string) => `WITH recent AS (
         SELECT (count(*) FILTER (WHERE h.last_auth_failure_at > now() - make_interval(secs => $1)))::int AS failing,
                (count(*) FILTER (WHERE h.reason = 'pleo_unreachable' AND h.updated_at > now() - make_interval(secs => $1)))::int AS unreachable
         FROM ${rows}
         WHERE h.last_auth_failure_at > now() - make_interval(secs => $1)
            OR (h.reason = 'pleo_unreachable' AND h.updated_at > now() - make_interval(secs => $1)))
       SELECT failing, unreachable,
              CASE WHEN greatest(failing, unreachable) >= $2
                   THEN (SELECT count(*) FROM (
                           SELECT 1 FROM connections WHERE status = 'active'
                           LIMIT floor(2 * failing / $3::float8)::bigint + 2) a)::int
                   ELSE 0 END AS active
       FROM recent`;

/** Rows of an active connection's active key only, each checked with one index look-up. */
const SIGNAL = signalOver(`connection_health h
         CROSS JOIN LATERAL (
           SELECT 1 FROM connections c WHERE c.tenant_id = h.tenant_id AND c.status = 'active' AND c.active_credential_id = h.credential_id LIMIT 1) c`);

/** Every health row, unchecked: counts at least the signal's (ADR 0060). */
const SIGNAL_BOUND = signalOver('connection_health h');

const FIND_OPEN = {
  name: 'provider_open_incident',
  text: `SELECT id, reason, opened_at AS "openedAt", affected_tenants AS "affectedTenants" FROM provider_incidents WHERE closed_at IS NULL`,
  values: [] as unknown[],
} satisfies PipelinedStatement;
