import { z } from 'zod';
import { Refusal } from '@keyward/contracts';

/**
 * Checks a request body against a strict schema at the edge. Unknown fields answer
 * `unknown_fields` (without naming them: a pasted key can hide in a field name), anything else
 * `invalid_request`. A missing body counts as `{}`.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body === undefined ? {} : body);
  if (result.success) return result.data;
  if (result.error.issues.some((issue) => issue.code === 'unrecognized_keys')) throw new Refusal('unknown_fields');
  throw new Refusal('invalid_request');
}
