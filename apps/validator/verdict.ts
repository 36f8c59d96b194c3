import { fitsBinding, problem, RejectionReason, RevalidationOutcome } from '@keyward/contracts';
import { IntrospectionResult, PleoUnexpectedResponse, PleoUnreachable, SubjectType } from '@keyward/pleo';

/**
 * Pure decisions: what an introspection means for a submitted key and for an active one. No I/O,
 * so every rule of the issue is a unit test away.
 */
export interface VerdictContext {
  requiredScopes: string[];
  /** The company the tenant is bound to (set, and the connection not uninstalled), else null. */
  boundCompanyId: string | null;
}

export type SubmissionVerdict =
  | { kind: 'validated'; companyId: string; subjectType: SubjectType; subjectId: string; scopes: string[] }
  | { kind: 'rejected'; reason: RejectionReason; missingScopes?: string[]; message: string }
  /** Pleo gave no answer about the key: never a rejection, try again later. */
  | { kind: 'retry'; failure: PleoUnreachable | PleoUnexpectedResponse };

function missingScopes(granted: string[], required: string[]): string[] {
  const have = new Set(granted);
  return required.filter((scope) => !have.has(scope));
}

function rejected(reason: RejectionReason, missing?: string[]): SubmissionVerdict {
  const base = problem(reason).message;
  const message = missing && missing.length > 0 ? `${base} Missing: ${missing.join(', ')}.` : base;
  return { kind: 'rejected', reason, ...(missing && missing.length > 0 ? { missingScopes: missing } : {}), message: message.slice(0, 500) };
}

export function judgeSubmission(result: IntrospectionResult, context: VerdictContext): SubmissionVerdict {
  switch (result.outcome) {
    case 'invalid_key':
      return rejected('invalid_key');
    case 'forbidden':
      // Pleo refused even to describe the key: it lacks permissions; which ones, it did not say.
      return rejected('insufficient_scopes');
    case 'unsupported_subject':
      return rejected('unsupported_subject');
    case 'unreachable':
    case 'unexpected_response':
      return { kind: 'retry', failure: result };
    case 'valid': {
      // An OAuth token or another credential type pasted into the key field.
      if (result.authMethod !== 'API_KEY') return rejected('invalid_key');
      if (!fitsBinding(context.boundCompanyId, result.companyId)) return rejected('company_mismatch');
      const missing = missingScopes(result.scopes, context.requiredScopes);
      if (missing.length > 0) return rejected('insufficient_scopes', missing);
      return { kind: 'validated', companyId: result.companyId, subjectType: result.subjectType, subjectId: result.subjectId, scopes: result.scopes };
    }
  }
}

export interface RevalidationVerdict {
  outcome: RevalidationOutcome;
  scopes: string[];
  missingScopes?: string[];
}

export function judgeRevalidation(result: IntrospectionResult, context: VerdictContext): RevalidationVerdict {
  switch (result.outcome) {
    case 'invalid_key':
      return { outcome: 'invalid', scopes: [] };
    case 'forbidden':
      return { outcome: 'insufficient_scopes', scopes: [] };
    case 'unreachable':
      // A 429 is this credential's budget at Pleo, not Pleo's health: kept apart so it never counts towards a provider incident.
      return { outcome: result.reason === 'rate_limited' ? 'rate_limited' : 'unreachable', scopes: [] };
    case 'unexpected_response':
      return { outcome: 'unreachable', scopes: [] };
    case 'unsupported_subject':
      // Multi-entity support was switched off after this key was accepted: it no longer fits.
      return { outcome: 'invalid', scopes: result.scopes };
    case 'valid': {
      if (result.authMethod !== 'API_KEY') return { outcome: 'invalid', scopes: result.scopes };
      if (!fitsBinding(context.boundCompanyId, result.companyId)) return { outcome: 'invalid', scopes: result.scopes };
      const missing = missingScopes(result.scopes, context.requiredScopes);
      if (missing.length > 0) return { outcome: 'insufficient_scopes', scopes: result.scopes, missingScopes: missing };
      return { outcome: 'valid', scopes: result.scopes };
    }
  }
}
