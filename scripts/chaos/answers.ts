import { z } from 'zod';

/**
 * What the suite reads of intake's and the sandbox's JSON answers, checked where an answer arrives.
 * Not strict: an answer may carry more than the suite looks at (apps/intake's DTOs describe it all).
 */

/** The sandbox's `POST /_sandbox/keys`. */
export const issuedKeyAnswer = z.object({ id: z.string(), apiKey: z.string(), companyId: z.string() });

/** Intake's 202/200 to `PUT …/pleo/key`. */
export const submissionAnswer = z.object({ credentialId: z.string() });

/** Intake's `GET …/pleo/connection`, as far as the plan is compared with it. */
const connectionAnswer = z.object({
  status: z.string(),
  key: z.object({ last4: z.string() }).nullish(),
  pendingSubmission: z.object({ submissionId: z.string() }).nullish(),
});
export type ConnectionAnswer = z.infer<typeof connectionAnswer>;

/** Intake's `GET …/audit`: whether the chain it verified is intact. */
const auditAnswer = z.object({ chain: z.object({ ok: z.boolean() }) });

/** Intake's refusals: `{ error: { code, message, action } }`. */
const problemAnswer = z.object({ error: z.object({ code: z.string() }) });

/** An answer the suite cannot go on without; the error names what is missing, never the values (a key may be among them). */
export function readAnswer<S extends z.ZodType>(schema: S, what: string, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) throw new Error(`${what}: unexpected answer (${result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')})`);
  return result.data;
}

/** A connection, or undefined when intake answered something else (a refusal after the caller gave up retrying). */
export function readConnection(body: unknown): ConnectionAnswer | undefined {
  const result = connectionAnswer.safeParse(body);
  return result.success ? result.data : undefined;
}

export function auditChainIntact(body: unknown): boolean {
  const result = auditAnswer.safeParse(body);
  return result.success && result.data.chain.ok;
}

export function problemCode(body: unknown): string | undefined {
  const result = problemAnswer.safeParse(body);
  return result.success ? result.data.error.code : undefined;
}
