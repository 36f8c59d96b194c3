import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { Metrics } from '@keyward/observability';
import type { WakeCause } from './submission-waiters';

export type SubmissionOutcome = 'pending_validation' | 'duplicate_pending' | 'unchanged' | 'refused_format' | 'refused_compromised' | 'rate_limited' | 'store_unavailable';

@Injectable()
export class SubmissionMetrics {
  private readonly submissions: Counter<string>;
  private readonly wakeups: Counter<string>;

  constructor(@Inject(Metrics) metrics: Metrics) {
    this.submissions = metrics.counter('keyward_intake_submissions_total', 'Key submissions by outcome', ['outcome']);
    this.wakeups = metrics.counter('keyward_intake_prefer_wait_wakeups_total', 'Times a Prefer: wait request read its submission or connection check again, by what woke it', ['cause']);
  }

  count(outcome: SubmissionOutcome): void {
    this.submissions.inc({ outcome });
  }

  /**
   * Why a `Prefer: wait` request reads again: a notification (the normal case), the LISTEN
   * connection coming back, the slow re-check (`recheckDue`: a notification was lost, or nothing
   * was decided yet), or its deadline. A caller gone reads nothing.
   */
  wokeUpBy(cause: WakeCause, recheckDue: boolean): void {
    if (cause === 'notified') this.wakeups.inc({ cause: 'notification' });
    else if (cause === 'relistened') this.wakeups.inc({ cause: 'relisten' });
    else if (cause === 'timeout') this.wakeups.inc({ cause: recheckDue ? 'recheck' : 'deadline' });
  }
}
