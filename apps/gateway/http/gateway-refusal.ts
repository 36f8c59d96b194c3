import { problem, Problem, ProblemCode } from '@keyward/contracts';

/**
 * keyward's own answer instead of Pleo's: a status and a code from the problem table, in the same
 * `{"error":{"code","message","action"}}` body as intake, with optional headers (Retry-After).
 */
export class GatewayRefusal {
  readonly problem: Problem;

  constructor(
    readonly status: number,
    readonly code: ProblemCode,
    readonly headers: Record<string, string> = {},
    /** Appended to the table's message (the connection's status). */
    readonly messageDetail?: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    const base = problem(code);
    this.problem = messageDetail ? { ...base, message: `${base.message.replace(/\.$/, '')} (${messageDetail}).` } : base;
  }

  body(): string {
    return JSON.stringify({ error: { ...this.problem, ...this.extra } });
  }
}
