import type { Counter, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { SECRETS_MANAGER_WRITE_QUOTA_PER_SECOND } from '@keyward/config';
import { Metrics } from '@keyward/observability';
import { BudgetShape, perSecond, RateBudgetExhaustedError, SharedRateBudget } from '@keyward/rate-budgets';
import { SecretStoreError } from './secret-store';

/**
 * Secrets Manager's request-rate quotas per account and Region that keyward's calls spend, each
 * 50 per second and not adjustable (Secrets Manager user guide, "AWS Secrets Manager quotas"):
 * `writes` is the combined rate of PutSecretValue, UpdateSecret and UpdateSecretVersionStage
 * (and the replication calls keyward never makes); the others are one operation each. Reads
 * (GetSecretValue, DescribeSecret: 10,000 per second) spend none of them and are not budgeted.
 */
const SECRETS_MANAGER_QUOTA_OF = {
  PutSecretValue: 'writes',
  UpdateSecret: 'writes',
  UpdateSecretVersionStage: 'writes',
  CreateSecret: 'createSecret',
  DeleteSecret: 'deleteSecret',
  RestoreSecret: 'restoreSecret',
  ListSecretVersionIds: 'listSecretVersionIds',
} as const;

export type SecretsManagerQuota = (typeof SECRETS_MANAGER_QUOTA_OF)[keyof typeof SECRETS_MANAGER_QUOTA_OF];

export function quotaOf(operation: string): SecretsManagerQuota | undefined {
  return (SECRETS_MANAGER_QUOTA_OF as Record<string, SecretsManagerQuota>)[operation];
}

/**
 * The longest a call waits for its turn. Under Node's 5-minute HTTP request timeout, so intake
 * answers 503 with Retry-After itself rather than having the connection cut; a budget booked
 * further ahead than this refuses the call at once (ADR 0033).
 */
const SECRETS_BUDGET_MAX_WAIT_MS = 240_000;

/** Asked before every call that spends a quota: resolves when the call may go. */
export interface SecretsCallBudget {
  /** Rejects with SecretStoreError `throttled` (transient) when the wait would pass the bound. */
  take(quota: SecretsManagerQuota): Promise<void>;
}

/** What the quotas cost: time waited for a turn, turns refused, throttling AWS still answered. */
export class SecretsQuotaMetrics {
  private readonly wait: Histogram<string>;
  private readonly refused: Counter<string>;
  private readonly throttles: Counter<string>;

  constructor(metrics: Metrics) {
    this.wait = metrics.histogram(
      'keyward_secrets_budget_wait_seconds',
      'Time a Secrets Manager call waited for its turn in the cluster-wide budget (KEYWARD_SECRETS_WRITE_RATE), by quota',
      ['quota'],
      [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 240],
    );
    this.refused = metrics.counter('keyward_secrets_budget_refused_total', 'Secrets Manager calls not made because the budget was booked beyond the longest wait, by quota', ['quota']);
    this.throttles = metrics.counter('keyward_secrets_throttled_total', 'ThrottlingException answers from Secrets Manager, by quota and whether the call was retried or the error surfaced', [
      'quota',
      'outcome',
    ]);
  }

  waited(quota: SecretsManagerQuota, ms: number): void {
    this.wait.observe({ quota }, ms / 1000);
  }

  refusedTurn(quota: SecretsManagerQuota): void {
    this.refused.inc({ quota });
  }

  throttled(quota: SecretsManagerQuota, outcome: 'retried' | 'surfaced'): void {
    this.throttles.inc({ quota, outcome });
  }
}

/**
 * One budget per quota for every replica of every service together, kept in Postgres
 * (`@keyward/rate-budgets`): `ratePerSecond` calls in any second, paced in small groups, each
 * call waiting its turn in booking order (ADR 0033). Fails closed: when Postgres cannot book,
 * the call is not made.
 */
export class SharedSecretsBudget implements SecretsCallBudget {
  private readonly budgets = new Map<SecretsManagerQuota, SharedRateBudget>();
  private readonly shape: BudgetShape;
  private readonly lateAfterMs: number;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: { region: string; ratePerSecond: number; maxWaitMs?: number; metrics?: SecretsQuotaMetrics },
  ) {
    this.shape = perSecond(options.ratePerSecond);
    this.lateAfterMs = lateTurnTolerance(options.ratePerSecond, this.shape);
  }

  async take(quota: SecretsManagerQuota): Promise<void> {
    const budget = this.budgetFor(quota);
    try {
      const { waitedMs } = await budget.take(this.options.maxWaitMs ?? SECRETS_BUDGET_MAX_WAIT_MS, this.lateAfterMs);
      this.options.metrics?.waited(quota, waitedMs);
    } catch (error) {
      if (error instanceof RateBudgetExhaustedError) {
        this.options.metrics?.refusedTurn(quota);
        throw new SecretStoreError('throttled', `Secrets Manager's ${quota} budget is booked for the next ${Math.ceil(error.retryAfterMs / 1000)} s`, true);
      }
      throw new SecretStoreError('unavailable', `Could not book a turn in Secrets Manager's ${quota} budget (Postgres: ${(error as Error)?.message ?? 'unknown error'})`, true);
    }
  }

  private budgetFor(quota: SecretsManagerQuota): SharedRateBudget {
    let budget = this.budgets.get(quota);
    if (!budget) {
      // Per Region, as AWS counts; one account per deployment.
      budget = new SharedRateBudget(this.dataSource, `secretsmanager:${this.options.region}:${quota}`, this.shape);
      this.budgets.set(quota, budget);
    }
    return budget;
  }
}

/**
 * How late a turn may start and the calls still fit AWS's 50 a second. The budget lets `rate`
 * calls go in any second; a call going up to `late` ms after its turn adds at most the turns of
 * the `late` ms before a second, `rate × late / 1000` plus one window's group. So with the
 * default 40/s (4 per 100 ms) a call may go 150 ms late; later, it waits for a new turn. At 50/s
 * there is no room at all: a quarter window still, and AWS's throttling is retried.
 */
function lateTurnTolerance(rate: number, shape: BudgetShape): number {
  return Math.max(shape.windowMs / 4, (1000 * (SECRETS_MANAGER_WRITE_QUOTA_PER_SECOND - rate - shape.limit)) / rate);
}
