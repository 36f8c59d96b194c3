import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KeywardLogger, PeriodicTask } from '@keyward/observability';
import { InstallSessionRepository } from '../install-sessions/install-session.repository';
import { SubmissionRateLimiter } from '../rate-limits/submission-rate-limiter';

const EVERY_MS = 10 * 60_000;
/** Expired sessions are kept a day (so "expired" can be told from "unknown"), then pruned. */
const KEEP_EXPIRED_SESSIONS_MS = 24 * 3600_000;

/**
 * Intake's clean-up on the one periodic runner every service uses (`PeriodicTask`): expired
 * install sessions and finished rate-limit windows. Both are idempotent deletes, so replicas may
 * overlap; no request waits for them.
 */
@Injectable()
export class IntakeHousekeeping implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly task: PeriodicTask;
  private readonly logger: KeywardLogger;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(InstallSessionRepository) private readonly installSessions: InstallSessionRepository,
    @Inject(SubmissionRateLimiter) private readonly rateLimiter: SubmissionRateLimiter,
    @Inject(KeywardLogger) logger: KeywardLogger,
  ) {
    this.logger = logger.child({ component: 'intake-housekeeping' });
    this.task = new PeriodicTask({
      round: async () => void (await this.round()),
      intervalMs: EVERY_MS,
      onFailure: (err) => this.logger.warn('Intake clean-up failed; next round retries', { err }),
      backoff: { initialMs: EVERY_MS, maxMs: EVERY_MS },
    });
  }

  onApplicationBootstrap(): void {
    this.task.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /** One round: what it removed. */
  async round(): Promise<{ installSessions: number; rateLimitWindows: number }> {
    const db = this.dataSource.manager;
    const installSessions = await this.installSessions.pruneExpiredBefore(db, new Date(Date.now() - KEEP_EXPIRED_SESSIONS_MS));
    const rateLimitWindows = await this.rateLimiter.pruneFinishedWindows();
    if (installSessions + rateLimitWindows > 0) this.logger.info('Pruned expired install sessions and rate-limit windows', { installSessions, rateLimitWindows });
    return { installSessions, rateLimitWindows };
  }
}
