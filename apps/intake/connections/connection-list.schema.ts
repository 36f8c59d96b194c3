import { z } from 'zod';
import { TENANT_ID_PATTERN } from '@keyward/contracts';
import { apiShape, dateTime, pageLimit, PROBLEM } from '../http/api-shapes';
import { KEY_VIEW } from '../submissions/submission.schema';
import { CONNECTION_STATUSES } from './connection-status';

/** `status=degraded,reconnect_required&cursor=…&limit=…`; a bad cursor answers `invalid_cursor`, anything else `invalid_query`. */
export const CONNECTION_LIST_QUERY = z.object({
  status: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(CONNECTION_STATUSES)).min(1))
    .optional()
    .meta({ description: 'Comma-separated states.', example: 'degraded,reconnect_required' }),
  /** The last tenant id of the previous page, base64url: opaque to callers, checked here. */
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,100}$/)
    .transform((value) => Buffer.from(value, 'base64url').toString('utf8'))
    .pipe(z.string().regex(TENANT_ID_PATTERN))
    .optional()
    .meta({ description: 'nextCursor of the previous page.' }),
  limit: pageLimit(200, 50),
});

export const CONNECTION_LIST_FIELD_CODES = { cursor: 'invalid_cursor' } as const;

export const CONNECTION_LIST_ITEM = apiShape(
  'ConnectionListItemDto',
  z.object({
    tenantId: z.string().meta({ example: 'acme-42' }),
    status: z.enum(CONNECTION_STATUSES).meta({ example: 'reconnect_required' }),
    companyId: z.string().nullable().meta({ example: '4f1c2a9e-7d1b-4c53-9a0e-2b8e5d6f7a10' }),
    key: KEY_VIEW.nullable(),
    since: dateTime().nullable().meta({ description: 'Since when the connection is in this state.' }),
    lastValidatedAt: dateTime().nullable(),
    lastError: PROBLEM.nullable().meta({ description: 'What failed last and what the customer should do.' }),
  }),
);

export const CONNECTION_LIST = apiShape(
  'ConnectionListDto',
  z.object({
    connections: z.array(CONNECTION_LIST_ITEM),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
  }),
);
