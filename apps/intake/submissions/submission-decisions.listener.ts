import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { NotificationListener, parseSubmissionDecided, SUBMISSION_DECIDED_CHANNEL } from '@keyward/persistence';
import { SubmissionWaiters } from './submission-waiters';

/**
 * Intake's one LISTEN connection for this process: each committed decision about a submission
 * wakes the `Prefer: wait` requests of that tenant's submission. After the connection comes back
 * (a Postgres restart, a terminated backend) every waiter reads its row again, since what was
 * notified meanwhile is lost. While it is down, waiters still re-read on the slow re-check.
 */
@Injectable()
export class SubmissionDecisionsListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly listener: NotificationListener;
  private readonly logger: KeywardLogger;
  private listenedBefore = false;
  private down = false;

  constructor(
    @Inject(KEYWARD_CONFIG) config: KeywardConfig,
    @Inject(SubmissionWaiters) private readonly waiters: SubmissionWaiters,
    @Inject(KeywardLogger) logger: KeywardLogger,
    @Inject(Metrics) metrics: Metrics,
  ) {
    this.logger = logger.child({ component: 'submission-decisions-listener' });
    this.listener = new NotificationListener({
      url: config.database.url,
      channel: SUBMISSION_DECIDED_CHANNEL,
      applicationName: `keyward-${config.service}-listen`,
      onNotification: (payload) => this.notified(payload),
      onListening: () => this.listening(),
      onLost: (error, retryInMs) => this.lost(error, retryInMs),
    });
    const listener = this.listener;
    metrics.gauge('keyward_intake_decision_listener_up', 'Whether intake listens for submission decisions (0: Prefer: wait answers on the slow re-check only)', [], function () {
      this.set(listener.isListening ? 1 : 0);
    });
    metrics.gauge('keyward_intake_prefer_wait_requests', 'Prefer: wait requests waiting for their submission', [], function () {
      this.set(waiters.size);
    });
  }

  onApplicationBootstrap(): void {
    this.listener.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.listener.stop();
  }

  private notified(payload: string): void {
    const decided = parseSubmissionDecided(payload);
    if (!decided) {
      this.logger.warn('Submission decisions: a notification without tenant and submission ids was ignored');
      return;
    }
    this.waiters.wake(decided.tenantId, 'submissionId' in decided ? decided.submissionId : decided.checkId);
  }

  private listening(): void {
    const rechecked = this.waiters.wakeAll();
    if (this.listenedBefore) this.logger.info('Submission decisions: listening again; every waiting request reads its submission again', { waiters: rechecked });
    this.listenedBefore = true;
    this.down = false;
  }

  /** Once per outage at warn; the attempts after it at debug. */
  private lost(error: unknown, retryInMs: number): void {
    const fields = { err: error, retryInMs, waiters: this.waiters.size };
    if (this.down) this.logger.debug('Submission decisions: still no LISTEN connection', fields);
    else this.logger.warn('Submission decisions: no LISTEN connection; waiting requests read their submission on the slow re-check until it is back', fields);
    this.down = true;
  }
}
