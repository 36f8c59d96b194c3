/**
 * What a call to Pleo can come to, as values with stable codes rather than thrown strings. None
 * of them carries anything of the key: a failure names a status and a reason, never a header.
 */
export type SubjectType = 'company' | 'organization';

/** Why Pleo could not give an answer about the key: retry later, never a verdict on the key. */
export type UnreachableReason = 'timeout' | 'server_error' | 'rate_limited' | 'circuit_open' | 'network';

export interface PleoUnreachable {
  outcome: 'unreachable';
  reason: UnreachableReason;
  /** The HTTP status when Pleo answered (5xx, 429). */
  status?: number;
  /** How long to wait before calling again (Retry-After, or until the circuit half-opens). */
  retryAfterMs?: number;
}

/** 401: Pleo does not accept this key (unknown, rotated, revoked). */
interface PleoInvalidKey {
  outcome: 'invalid_key';
  status: 401;
}

/** 403: the key is valid but lacks a scope for this call. */
interface PleoForbidden {
  outcome: 'forbidden';
  status: 403;
}

/** Pleo answered something keyward cannot read (an unexpected status, body or subject). */
export interface PleoUnexpectedResponse {
  outcome: 'unexpected_response';
  status: number;
  /** A short, key-free description for logs: which check failed. */
  detail: string;
}

export type PleoFailure = PleoUnreachable | PleoInvalidKey | PleoForbidden | PleoUnexpectedResponse;

interface ValidIntrospection {
  outcome: 'valid';
  authMethod: string;
  /** The company the key belongs to; for an (allowed) organisation key, the organisation id. */
  companyId: string;
  subjectType: SubjectType;
  subjectId: string;
  scopes: string[];
  clientId: string | null;
  applicationName: string | null;
}

/** An organisation (multi-entity) key while keyward is configured for single companies. */
interface UnsupportedSubjectIntrospection {
  outcome: 'unsupported_subject';
  subjectType: 'organization';
  subjectId: string;
  scopes: string[];
}

export type IntrospectionResult = ValidIntrospection | UnsupportedSubjectIntrospection | PleoFailure;

interface PleoSuccess {
  outcome: 'ok';
  status: number;
  /** Parsed JSON, or null for an empty body. */
  body: unknown;
}

export type PleoResponse = PleoSuccess | PleoFailure;

export function describeFailure(failure: PleoFailure): string {
  switch (failure.outcome) {
    case 'unreachable':
      return `Pleo unreachable (${failure.reason}${failure.status ? `, HTTP ${failure.status}` : ''}${failure.retryAfterMs !== undefined ? `, retry after ${failure.retryAfterMs} ms` : ''})`;
    case 'invalid_key':
      return 'Pleo rejected the key (HTTP 401)';
    case 'forbidden':
      return 'Pleo refused the call for missing scopes (HTTP 403)';
    case 'unexpected_response':
      return `Pleo answered unexpectedly (HTTP ${failure.status}: ${failure.detail})`;
  }
}
