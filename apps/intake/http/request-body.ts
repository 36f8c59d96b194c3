import { z } from 'zod';
import { Refusal, RefusalCode } from '@keyward/contracts';

/** The refusal code a bad value given for a field answers, where it has one of its own (e.g. `invalid_tenant_id`). */
export type FieldCodes = Partial<Record<string, RefusalCode>>;

/**
 * Checks a request body against a strict schema at the edge. Unknown fields answer
 * `unknown_fields` (without naming them: a pasted key can hide in a field name); else the first
 * bad value given answers its field's own code, and anything else (a missing field too)
 * `invalid_request`. A missing body counts as `{}`.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, fieldCodes: FieldCodes = {}): z.output<S> {
  const input = body === undefined ? {} : body;
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw refusalFor(result.error, input, fieldCodes, 'invalid_request');
}

export function refusalFor(error: z.ZodError, input: unknown, fieldCodes: FieldCodes, fallback: RefusalCode): Refusal {
  if (error.issues.some((issue) => issue.code === 'unrecognized_keys')) return new Refusal('unknown_fields');
  const field = error.issues[0]?.path[0];
  const given = typeof field === 'string' && typeof input === 'object' && input !== null && (input as Record<string, unknown>)[field] !== undefined;
  return new Refusal((given ? fieldCodes[field] : undefined) ?? fallback);
}
