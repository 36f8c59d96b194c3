import { z } from 'zod';
import { REVALIDATION_OUTCOMES } from '@keyward/contracts';
import { apiShape, dateTime, PROBLEM } from '../http/api-shapes';

export const CONNECTION_CHECK = apiShape(
  'ConnectionCheckDto',
  z.object({
    checkId: z.uuid().meta({ description: 'The id of this check (GET …/connection/checks/{checkId}).' }),
    status: z.enum(['pending', 'completed']).meta({ example: 'completed' }),
    requestedAt: dateTime(),
    outcome: z
      .enum(REVALIDATION_OUTCOMES)
      .optional()
      .meta({
        example: 'valid',
        description:
          'What Pleo said about the active key. `unreachable` is no verdict: the key is left as it was and checked again later; ' + '`rate_limited`: Pleo answered 429 for this key, also no verdict.',
      }),
    checkedAt: dateTime().optional(),
    missingScopes: z
      .array(z.string())
      .optional()
      .meta({ example: ['users:read'] }),
    error: PROBLEM.nullable().optional().meta({ description: 'What the outcome means for the customer; null when the key is fine.' }),
  }),
);
