import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { Metrics } from '@keyward/observability';

export type SubmissionOutcome =
  | 'pending_validation'
  | 'duplicate_pending'
  | 'unchanged'
  | 'refused_format'
  | 'refused_compromised'
  | 'rate_limited'
  | 'store_unavailable';

@Injectable()
export class SubmissionMetrics {
  private readonly submissions: Counter<string>;

  constructor(@Inject(Metrics) metrics: Metrics) {
    this.submissions = metrics.counter('keyward_intake_submissions_total', 'Key submissions by outcome', ['outcome']);
  }

  count(outcome: SubmissionOutcome): void {
    this.submissions.inc({ outcome });
  }
}
