import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { Refusal } from '@keyward/contracts';
import { pipelinedOnce, UNFLUSHED_COMMIT, type PipelinedStatement } from '@keyward/persistence';

interface Window {
  bucket: string;
  limit: number;
  seconds: number;
}

/**
 * Fixed-window submission limits per tenant (per hour) and per caller (per minute), counted in
 * Postgres so every intake replica shares them. Intake must not become an oracle for guessing
 * keys against Pleo; every submission attempt counts, whether or not the key is well formed.
 * A hit's commit does not wait for the disk (`UNFLUSHED_COMMIT`): every submission of a caller
 * updates the caller's window row, and a flush while holding it made them queue (ADR 0054).
 */
@Injectable()
export class SubmissionRateLimiter {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
  ) {}

  /**
   * Counts one submission attempt, to send first in an implicit transaction with other statements
   * (one round trip): `statements` count it, `settle` with the pipeline's rows (these statements'
   * first) throws 429 `rate_limited` with Retry-After when a window is full.
   */
  submissionAttempt(tenantId: string, callerKey: string): { statements: PipelinedStatement[]; settle: (rowsOfEach: unknown[][]) => void } {
    const windows: Window[] = [
      { bucket: `submit:caller:${callerKey}`, limit: this.config.intake.submissionsPerCallerPerMinute, seconds: 60 },
      { bucket: `submit:tenant:${tenantId}`, limit: this.config.intake.submissionsPerTenantPerHour, seconds: 3600 },
    ];
    return { statements: [UNFLUSHED_COMMIT, hitStatement(windows)], settle: (rowsOfEach) => settle(windows, rowsOfEach[1] as HitRow[], 'rate_limited') };
  }

  /** Connection checks per tenant per hour: each one costs a call to Pleo with the customer's key. */
  async consumeCheck(tenantId: string): Promise<void> {
    await this.hit([{ bucket: `check:tenant:${tenantId}`, limit: this.config.intake.connectionChecksPerTenantPerHour, seconds: 3600 }], 'check_rate_limited');
  }

  private async hit(windows: Window[], code: 'rate_limited' | 'check_rate_limited'): Promise<void> {
    const [, rows] = await pipelinedOnce(this.dataSource, [UNFLUSHED_COMMIT, hitStatement(windows)]);
    settle(windows, rows as HitRow[], code);
  }

  /** Deletes intake's windows that ended over an hour ago (the longest is an hour); how many. */
  async pruneFinishedWindows(): Promise<number> {
    const [, deleted] = await this.dataSource.query<[unknown[], number]>(
      `DELETE FROM rate_limit_windows WHERE (bucket LIKE 'submit:%' OR bucket LIKE 'check:%') AND window_start < now() - interval '2 hours'`,
    );
    return deleted;
  }
}

interface HitRow {
  bucket: string;
  hits: number;
  window_start: number;
  now: number;
}

/** Every window in one statement, its rows always in the order given. */
function hitStatement(windows: Window[]): PipelinedStatement {
  return {
    name: 'intake_rate_limit_hit',
    text: `INSERT INTO rate_limit_windows (bucket, window_start, hits)
       SELECT w.bucket, to_timestamp((floor(extract(epoch FROM now()) / w.seconds) * w.seconds)::float8), 1
         FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS w(bucket, seconds, n)
        ORDER BY w.n
       ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
       RETURNING bucket, hits, extract(epoch FROM window_start)::float8 AS window_start, extract(epoch FROM now())::float8 AS now`,
    values: [windows.map((w) => w.bucket), windows.map((w) => w.seconds)],
  };
}

/** Throws `code` with Retry-After (the latest end of a full window) when a window is over its limit. */
function settle(windows: Window[], rows: HitRow[], code: 'rate_limited' | 'check_rate_limited'): void {
  let retryAfter = 0;
  for (const window of windows) {
    const row = rows.find((r) => r.bucket === window.bucket)!;
    if (row.hits > window.limit) retryAfter = Math.max(retryAfter, Math.ceil(row.window_start + window.seconds - row.now), 1);
  }
  if (retryAfter > 0) throw new Refusal(code, { headers: { 'Retry-After': String(retryAfter) } });
}
