/**
 * What the transport does with an event whose handler failed: retry it after a delay, or park it
 * for an operator. Pure, so the rules read as a table (retry-decision.spec.ts).
 */
export interface FailureSituation {
  /** 1 for the first delivery. */
  attempt: number;
  /** Milliseconds since the first failure of this event. */
  elapsedMs: number;
  /** The handler said the event can never succeed (PermanentEventError). */
  permanent: boolean;
  /** Postgres, the broker or the secret backend was unavailable: not the event's fault. */
  outage: boolean;
}

export interface RetryRules {
  /** Delays between attempts; the last one repeats while a time budget allows. */
  tiersMs: number[];
  /** When set, retry until this long after the first failure instead of once per tier. */
  maxRetryDurationMs?: number;
  /** How long an event failing only for an outage is kept. */
  outageBudgetMs: number;
}

export type FailureDecision = { kind: 'retry'; delayMs: number } | { kind: 'park'; why: 'permanent' | 'tiers_exhausted' | 'budget_exhausted' };

export function decideOnFailure(situation: FailureSituation, rules: RetryRules): FailureDecision {
  const { attempt, elapsedMs, permanent, outage } = situation;
  const { tiersMs } = rules;
  if (permanent) return { kind: 'park', why: 'permanent' };
  const delayMs = tiersMs[Math.min(attempt - 1, tiersMs.length - 1)];
  if (outage) {
    const budget = Math.max(rules.outageBudgetMs, rules.maxRetryDurationMs ?? 0);
    return elapsedMs < budget ? { kind: 'retry', delayMs } : { kind: 'park', why: 'budget_exhausted' };
  }
  if (rules.maxRetryDurationMs !== undefined) {
    return elapsedMs < rules.maxRetryDurationMs ? { kind: 'retry', delayMs } : { kind: 'park', why: 'budget_exhausted' };
  }
  return attempt <= tiersMs.length ? { kind: 'retry', delayMs } : { kind: 'park', why: 'tiers_exhausted' };
}
