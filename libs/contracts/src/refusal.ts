import { problem, Problem, RefusalCode, refusalStatus } from './problems';

export interface RefusalOptions {
  /** Response headers that belong to the refusal (Retry-After, WWW-Authenticate, Allow). */
  headers?: Record<string, string>;
  /** Extra, non-secret facts for the answer (e.g. missingScopes, the connection's status). */
  extra?: Record<string, unknown>;
  /** Appended to the table's message in parentheses (e.g. "status: disabled"). */
  detail?: string;
}

/**
 * A request keyward declines, as a service states it: a code from the problem table and the
 * facts that go with it, no HTTP. Services throw or return it; the HTTP edge answers it with the
 * status the table gives the code and the body `{"error":{code,message,action,...extra}}`.
 */
export class Refusal extends Error {
  readonly status: number;
  readonly problem: Problem;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;

  constructor(
    readonly code: RefusalCode,
    options: RefusalOptions = {},
  ) {
    super(code);
    this.name = 'Refusal';
    this.status = refusalStatus(code);
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
    const base = problem(code);
    this.problem = options.detail ? { ...base, message: `${base.message.replace(/\.$/, '')} (${options.detail}).` } : base;
  }

  body(): { error: Problem & Record<string, unknown> } {
    return { error: { ...this.problem, ...this.extra } };
  }
}
