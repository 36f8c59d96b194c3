import { DynamicModule, Inject, Injectable, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { KeywardLogger, Metrics, PeriodicTask } from '@keyward/observability';
import { Locks, LOCKS } from '@keyward/persistence';

interface SweepLimits {
  /** Work older than this (seconds since its last sign of progress) counts as stuck. */
  stuckAfterSeconds: number;
  /** Submissions wait longer: the validator's slowest retry tier is 10 minutes. */
  submissionStuckAfterSeconds: number;
  /** How many times one event is re-driven before it is left to an operator. */
  maxRedrives: number;
  /** At most this many items per sweep and round. */
  batch: number;
}

export interface SweepResult {
  /** Driven again through the normal path (its event re-staged). */
  redriven: string[];
  /** Stuck, but re-driven `maxRedrives` times already: an operator's. */
  gaveUp: string[];
}

/** One kind of stuck work, swept by the service that owns it, in one transaction. */
export interface Sweep {
  /** Metric label and log field, e.g. `submission_unvalidated`. */
  kind: string;
  run(tx: EntityManager, limits: SweepLimits): Promise<SweepResult>;
}

/**
 * Re-opens published outbox rows so the relay publishes the same event (same id) again; the
 * consumers' inboxes and state checks make a second delivery harmless. `attempts` counts every
 * relay of a row, so `attempts <= maxRedrives` bounds how often the reconciler re-drives one event.
 * Returns the ids re-opened.
 */
export async function reopenOutboxRows(tx: EntityManager, ids: string[], maxRedrives: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = returnedRows<{ id: string }>(
    await tx.query(
      `UPDATE outbox SET published_at = NULL, available_at = now(), last_error = 'reconciler'
       WHERE id = ANY($1::uuid[]) AND published_at IS NOT NULL AND attempts <= $2 RETURNING id::text`,
      [ids, maxRedrives],
    ),
  );
  if (rows.length > 0) await wakeRelays(tx);
  return rows.map((r) => r.id);
}

/**
 * Makes the oldest unpublished outbox rows of these event types, older than `olderThanSeconds`,
 * due now and wakes the relays; returns their ids. For a sweep whose events must not wait out a
 * relay's backoff (the monitor's alerts).
 */
export async function hurryUnpublishedOutboxRows(tx: EntityManager, eventTypes: readonly string[], olderThanSeconds: number, limit: number): Promise<string[]> {
  const rows = returnedRows<{ id: string }>(
    await tx.query(
      `UPDATE outbox SET available_at = now()
       WHERE id IN (
         SELECT id FROM outbox WHERE event_type = ANY($1) AND published_at IS NULL AND created_at < now() - make_interval(secs => $2)
         ORDER BY seq LIMIT $3)
       RETURNING id::text`,
      [eventTypes, olderThanSeconds, limit],
    ),
  );
  if (rows.length > 0) await wakeRelays(tx);
  return rows.map((r) => r.id);
}

/** Wakes every relay listening on the outbox channel when the transaction commits. */
async function wakeRelays(tx: EntityManager): Promise<void> {
  await tx.query(`SELECT pg_notify('keyward_outbox', '')`);
}

/** TypeORM answers an UPDATE/DELETE … RETURNING on Postgres with [rows, count]. */
export function returnedRows<T>(result: unknown): T[] {
  return (Array.isArray(result) && Array.isArray(result[0]) ? result[0] : result) as T[];
}

const RECONCILER_SWEEPS = Symbol('RECONCILER_SWEEPS');

/**
 * The reconciler (ADR 0014): every `KEYWARD_RECONCILE_INTERVAL_SECONDS` each sweep of this service
 * looks for work stuck past its expected time and drives it again through the normal path. One
 * replica sweeps a kind at a time (advisory lock); what was found is counted by kind and logged.
 * It is the second line: delayed retries and the outbox are the first.
 */
@Injectable()
export class Reconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private task?: PeriodicTask;
  private readonly found;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(RECONCILER_SWEEPS) private readonly sweeps: Sweep[],
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
    @Inject(Metrics) metrics: Metrics,
  ) {
    this.found = metrics.counter('keyward_reconciler_found_total', 'Stuck work the reconciler found, by kind and what it did (redriven, gave_up)', ['kind', 'action']);
  }

  onApplicationBootstrap(): void {
    const intervalMs = this.config.reconciler.intervalSeconds * 1000;
    if (intervalMs <= 0 || this.sweeps.length === 0) return;
    this.task = new PeriodicTask({
      round: async () => void (await this.sweepAll()),
      intervalMs,
      startImmediately: false,
      onFailure: (err, backoffMs) => this.logger.warn('Reconciler round failed; the next round sweeps again', { err, backoffMs }),
      backoff: { initialMs: intervalMs, maxMs: intervalMs },
    });
    this.task.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task?.stop();
  }

  /** One round of every sweep; returns what each found. */
  async sweepAll(): Promise<Record<string, SweepResult>> {
    const results: Record<string, SweepResult> = {};
    const { stuckAfterSeconds, submissionStuckAfterSeconds, maxRedrives } = this.config.reconciler;
    const limits: SweepLimits = { stuckAfterSeconds, submissionStuckAfterSeconds, maxRedrives, batch: 500 };
    for (const sweep of this.sweeps) {
      try {
        const result = await this.dataSource.transaction(async (tx) => {
          const locked = await Locks.tryHold(tx, LOCKS.reconcilerSweep(sweep.kind));
          return locked ? sweep.run(tx, limits) : { redriven: [], gaveUp: [] };
        });
        results[sweep.kind] = result;
        if (result.redriven.length > 0) {
          this.found.inc({ kind: sweep.kind, action: 'redriven' }, result.redriven.length);
          this.logger.warn('Reconciler found stuck work and drove it again', { kind: sweep.kind, count: result.redriven.length, eventIds: result.redriven.slice(0, 20) });
        }
        if (result.gaveUp.length > 0) {
          this.found.inc({ kind: sweep.kind, action: 'gave_up' }, result.gaveUp.length);
          this.logger.error('Reconciler found stuck work it already re-drove too often; an operator must look (docs/runbook.md)', {
            kind: sweep.kind,
            count: result.gaveUp.length,
            eventIds: result.gaveUp.slice(0, 20),
          });
        }
      } catch (error) {
        this.logger.warn('Reconciler sweep failed; the next round retries', { kind: sweep.kind, err: error });
      }
    }
    return results;
  }
}

@Module({})
export class ReconcilerModule {
  static forRoot(sweeps: Sweep[]): DynamicModule {
    return { module: ReconcilerModule, providers: [{ provide: RECONCILER_SWEEPS, useValue: sweeps }, Reconciler], exports: [Reconciler] };
  }
}
