import { KeywardConfig } from '@keyward/config';
import { RetryPolicy, RETRY_TIERS } from '@keyward/messaging';

/**
 * While Pleo is unreachable a submission waits, it is not rejected: its event is retried with
 * growing delays, the last one repeating, until `KEYWARD_VALIDATION_RETRY_HOURS` (default 24)
 * after the first failure; then it is parked for an operator.
 */
export function validationRetryPolicy(config: KeywardConfig, tiersMs: number[] = RETRY_TIERS.validator): RetryPolicy {
  return { tiersMs, maxRetryDurationMs: retryBudgetMs(config) };
}

export function retryBudgetMs(config: KeywardConfig): number {
  return Math.round(config.validation.retryForHours * 3_600_000);
}
