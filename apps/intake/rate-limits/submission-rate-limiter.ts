import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { Refusal } from '@keyward/contracts';

interface Window {
  bucket: string;
  limit: number;
  seconds: number;
}

/**
 * Fixed-window submission limits per tenant (per hour) and per caller (per minute), counted in
 * Postgres so every intake replica shares them. Intake must not become an oracle for guessing
 * keys against Pleo; every submission attempt counts, whether or not the key is well formed.
 */
@Injectable()
export class SubmissionRateLimiter {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
  ) {}

  /** Counts one attempt; throws 429 `rate_limited` with Retry-After when a window is full. */
  async consume(tenantId: string, callerKey: string): Promise<void> {
    await this.hit(
      [
        { bucket: `submit:caller:${callerKey}`, limit: this.config.intake.submissionsPerCallerPerMinute, seconds: 60 },
        { bucket: `submit:tenant:${tenantId}`, limit: this.config.intake.submissionsPerTenantPerHour, seconds: 3600 },
      ],
      'rate_limited',
    );
  }

  /** Connection checks per tenant per hour: each one costs a call to Pleo with the customer's key. */
  async consumeCheck(tenantId: string): Promise<void> {
    await this.hit([{ bucket: `check:tenant:${tenantId}`, limit: this.config.intake.connectionChecksPerTenantPerHour, seconds: 3600 }], 'check_rate_limited');
  }

  private async hit(windows: Window[], code: 'rate_limited' | 'check_rate_limited'): Promise<void> {
    let retryAfter = 0;
    for (const window of windows) {
      const [row] = await this.dataSource.query<{ hits: number; remaining: number }[]>(
        `INSERT INTO rate_limit_windows (bucket, window_start, hits)
         VALUES ($1, to_timestamp((floor(extract(epoch FROM now()) / $2::int) * $2::int)::float8), 1)
         ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1
         RETURNING hits, extract(epoch FROM (window_start + make_interval(secs => $2::int) - now()))::float AS remaining`,
        [window.bucket, window.seconds],
      );
      if (row.hits > window.limit) retryAfter = Math.max(retryAfter, Math.ceil(row.remaining), 1);
    }
    if (retryAfter > 0) throw new Refusal(code, { headers: { 'Retry-After': String(retryAfter) } });
  }

  /** Deletes intake's windows that ended over an hour ago (the longest is an hour); how many. */
  async pruneFinishedWindows(): Promise<number> {
    const [, deleted] = await this.dataSource.query<[unknown[], number]>(
      `DELETE FROM rate_limit_windows WHERE (bucket LIKE 'submit:%' OR bucket LIKE 'check:%') AND window_start < now() - interval '2 hours'`,
    );
    return deleted;
  }
}
