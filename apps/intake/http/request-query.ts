import { z } from 'zod';
import { FieldCodes, refusalFor } from './request-body';

/**
 * Checks a query string against its schema at the edge: the first bad parameter (in the schema's
 * order) answers its own code, or `invalid_query`. Parameters the schema does not name are ignored.
 */
export function parseQuery<S extends z.ZodObject>(schema: S, query: unknown, fieldCodes: FieldCodes = {}): z.output<S> {
  const input = query ?? {};
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw refusalFor(result.error, input, fieldCodes, 'invalid_query');
}
