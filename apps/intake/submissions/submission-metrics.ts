import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { Metrics } from '@keyward/observability';

export type SubmissionOutcome = 'pending_validation' | 'duplicate_pending' | 'unchanged' | 'refused_format' | 'refused_compromised' | 'rate_limited' | 'store_unavailable';

/**
 * Why a `Prefer: wait` request read its submission again: a notification (the normal case), the
 * LISTEN connection coming back, the slow re-check (a notification was lost, or nothing was
 * decided yet), or its deadline.
 */
export type PreferWaitWakeup = 'notification' | 'relisten' | 'recheck' | 'deadline';

@Injectable()
export class SubmissionMetrics {
  private readonly submissions: Counter<string>;
  private readonly wakeups: Counter<string>;

  constructor(@Inject(Metrics) metrics: Metrics) {
    this.submissions = metrics.counter('keyward_intake_submissions_total', 'Key submissions by outcome', ['outcome']);
    this.wakeups = metrics.counter('keyward_intake_prefer_wait_wakeups_total', 'Times a Prefer: wait request read its submission again, by what woke it', ['cause']);
  }

  count(outcome: SubmissionOutcome): void {
    this.submissions.inc({ outcome });
  }

  wokeUp(cause: PreferWaitWakeup): void {
    this.wakeups.inc({ cause });
  }
}
