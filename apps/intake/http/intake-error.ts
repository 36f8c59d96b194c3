import { problem, Problem, ProblemCode } from '@keyward/contracts';

/**
 * A refusal or failure the caller sees: an HTTP status, a code from the person-facing problem
 * table, and optional headers (Retry-After). Thrown by services, answered by ProblemFilter.
 */
export class IntakeError extends Error {
  readonly problem: Problem;

  constructor(
    readonly status: number,
    code: ProblemCode,
    readonly headers: Record<string, string> = {},
    /** Extra, non-secret facts for the answer (e.g. missingScopes). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(code);
    this.name = 'IntakeError';
    this.problem = problem(code);
  }

  body(): { error: Problem & Record<string, unknown> } {
    return { error: { ...this.problem, ...this.extra } };
  }
}
