import { z } from 'zod';
import { apiShape, dateTime, pageLimit } from '../http/api-shapes';

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Anything not as described is refused rather than guessed: `invalid_since`, `invalid_request` (limit), `invalid_cursor`. */
export const AUDIT_QUERY = z.object({
  since: z
    .string()
    .regex(ISO_DATE_TIME)
    .transform((value) => new Date(value))
    .refine((date) => !Number.isNaN(date.getTime()))
    .optional()
    .meta({ description: 'ISO 8601 date-time: entries at or after it.' }),
  limit: pageLimit(1000, 200),
  /** The seq the next page starts below, as handed out in `nextCursor`. */
  cursor: z
    .string()
    .regex(/^s[1-9]\d{0,9}$/)
    .transform((value) => Number(value.slice(1)))
    .pipe(z.number().max(2_147_483_647))
    .optional()
    .meta({ description: 'The nextCursor of the previous page: the page of older entries after it.' }),
});

export const AUDIT_QUERY_FIELD_CODES = { since: 'invalid_since', limit: 'invalid_request', cursor: 'invalid_cursor' } as const;

const AUDIT_ENTRY = apiShape(
  'AuditEntryDto',
  z.object({
    seq: z.number().int(),
    occurredAt: dateTime(),
    actor: z.string().meta({ example: 'token:billing' }),
    action: z.string().meta({ example: 'key.submitted' }),
    credentialId: z.uuid().nullable(),
    last4: z.string().nullable(),
    correlationId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  }),
);

const AUDIT_CHAIN = apiShape(
  'AuditChainDto',
  z.object({
    ok: z.boolean().meta({ description: 'Whether what this read verified is intact: the entries appended since the previous read, and the entries of this page.' }),
    entries: z.number().int().meta({ description: "Entries in the tenant's chain." }),
    verifiedThroughSeq: z.number().int().meta({ description: 'The chain is verified from its first entry through this seq.' }),
    brokenAtSeq: z.number().int().optional(),
  }),
);

export const AUDIT_LOG = apiShape(
  'AuditLogDto',
  z.object({
    tenantId: z.string(),
    entries: z.array(AUDIT_ENTRY).meta({ description: 'One page, newest first.' }),
    nextCursor: z.string().nullable().meta({ description: 'Pass as cursor for the next, older page; null on the last page.' }),
    chain: AUDIT_CHAIN,
  }),
);
