import { z } from 'zod';
import { apiShape, dateTime, pageLimit } from '../http/api-shapes';

const STATUSES = ['delivered', 'failed', 'redelivering'] as const;

/** A bad cursor answers `invalid_cursor`, anything else `invalid_query`. */
export const ALERT_DELIVERY_QUERY = z.object({
  status: z.enum(STATUSES).optional(),
  tenantId: z.string().max(64).optional(),
  cursor: z
    .string()
    .regex(/^\d{1,19}$/)
    .optional()
    .meta({ description: 'nextCursor of the previous page.' }),
  limit: pageLimit(200, 50),
});

export const ALERT_DELIVERY_QUERY_FIELD_CODES = { cursor: 'invalid_cursor' } as const;

export const ALERT_DELIVERY = apiShape(
  'AlertDeliveryDto',
  z.object({
    id: z.uuid().meta({ description: 'The alert event id, also the webhook-id header of every attempt.' }),
    type: z.string().meta({ example: 'alert.reconnection_required' }),
    tenantId: z.string().nullable().meta({ example: 'acme-42' }),
    status: z.enum(STATUSES).meta({ example: 'failed', description: "The last attempt's result, or redelivering after a redeliver request." }),
    attempts: z.number().int().meta({ example: 8 }),
    firstAttemptAt: dateTime(),
    lastAttemptAt: dateTime(),
    lastResponseStatus: z.number().int().nullable().meta({ example: 503 }),
    lastError: z.string().nullable().meta({ example: 'HTTP 503' }),
    redeliveryRequestedAt: dateTime().nullable(),
  }),
);

export const ALERT_DELIVERY_LIST = apiShape('AlertDeliveryListDto', z.object({ deliveries: z.array(ALERT_DELIVERY), nextCursor: z.string().nullable() }));
