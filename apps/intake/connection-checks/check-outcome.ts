import { problem, Problem, REVALIDATION_OUTCOMES, RevalidationOutcome } from '@keyward/contracts';

type CheckOutcome = RevalidationOutcome;

export interface ConnectionCheckView {
  checkId: string;
  status: 'pending' | 'completed';
  requestedAt: string;
  outcome?: CheckOutcome;
  checkedAt?: string;
  missingScopes?: string[];
  /** What the outcome means for the customer, when it needs them (null when the key is fine). */
  error?: Problem | null;
}

/** The validator's audit entry for a revalidation (`credential.revalidated`), as stored. */
export interface RevalidationRecord {
  occurredAt: Date;
  details: { outcome?: unknown; missingScopes?: unknown };
}

/** What a check says, from the request and (once there) the validator's answer. */
export function checkView(checkId: string, requestedAt: Date, answer: RevalidationRecord | null): ConnectionCheckView {
  const base = { checkId, requestedAt: requestedAt.toISOString() };
  if (!answer) return { ...base, status: 'pending' };
  const outcome = (REVALIDATION_OUTCOMES as readonly unknown[]).includes(answer.details.outcome) ? (answer.details.outcome as CheckOutcome) : 'unreachable';
  const missingScopes = Array.isArray(answer.details.missingScopes) ? answer.details.missingScopes.filter((s): s is string => typeof s === 'string') : [];
  return {
    ...base,
    status: 'completed',
    outcome,
    checkedAt: answer.occurredAt.toISOString(),
    ...(missingScopes.length > 0 ? { missingScopes } : {}),
    error: outcomeProblem(outcome),
  };
}

function outcomeProblem(outcome: CheckOutcome): Problem | null {
  switch (outcome) {
    case 'valid':
      return null;
    case 'invalid':
      return problem('reconnect_required');
    case 'insufficient_scopes':
      return problem('insufficient_scopes');
    case 'unreachable':
    case 'rate_limited':
      return problem('pleo_unreachable');
  }
}
