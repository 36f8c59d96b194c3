import { decideOnFailure, FailureDecision, FailureSituation, RetryRules } from './retry-decision';

const tiers: RetryRules = { tiersMs: [1_000, 10_000, 60_000], outageBudgetMs: 86_400_000 };
const budget: RetryRules = { tiersMs: [1_000, 5_000], maxRetryDurationMs: 30_000, outageBudgetMs: 86_400_000 };
const failure = (over: Partial<FailureSituation>): FailureSituation => ({ attempt: 1, elapsedMs: 0, permanent: false, outage: false, ...over });

describe('decideOnFailure', () => {
  const cases: [string, FailureSituation, RetryRules, FailureDecision][] = [
    ['first failure: first tier', failure({}), tiers, { kind: 'retry', delayMs: 1_000 }],
    ['second failure: second tier', failure({ attempt: 2 }), tiers, { kind: 'retry', delayMs: 10_000 }],
    ['last tier used once', failure({ attempt: 3 }), tiers, { kind: 'retry', delayMs: 60_000 }],
    ['after the last tier: parked', failure({ attempt: 4 }), tiers, { kind: 'park', why: 'tiers_exhausted' }],
    ['permanent: parked at once', failure({ permanent: true }), tiers, { kind: 'park', why: 'permanent' }],
    ['permanent wins over an outage', failure({ permanent: true, outage: true }), tiers, { kind: 'park', why: 'permanent' }],
    ['outage past the tiers: kept, slowest tier', failure({ attempt: 9, outage: true, elapsedMs: 3_600_000 }), tiers, { kind: 'retry', delayMs: 60_000 }],
    ['outage past its budget: parked', failure({ attempt: 99, outage: true, elapsedMs: 86_400_000 }), tiers, { kind: 'park', why: 'budget_exhausted' }],
    ['time budget: last tier repeats', failure({ attempt: 7, elapsedMs: 29_999 }), budget, { kind: 'retry', delayMs: 5_000 }],
    ['time budget spent: parked', failure({ attempt: 3, elapsedMs: 30_000 }), budget, { kind: 'park', why: 'budget_exhausted' }],
    [
      'outage uses the longer of its budget and the time budget',
      failure({ attempt: 3, outage: true, elapsedMs: 90_000_000 }),
      { ...budget, maxRetryDurationMs: 100_000_000 },
      { kind: 'retry', delayMs: 5_000 },
    ],
  ];
  it.each(cases)('%s', (_name, situation, rules, expected) => {
    expect(decideOnFailure(situation, rules)).toEqual(expected);
  });
});
