import { z } from 'zod';

/**
 * Every event of ARCHITECTURE.md as a strict schema. `z.strictObject` refuses unknown fields,
 * so nothing (key material included) can ride along in an event by accident.
 */
const uuid = z.uuid();
const isoDate = z.iso.datetime({ offset: true });
/**
 * A customer tenant id never leaves its path segment (secret names, URLs): letters, digits, _
 * and -, starting with a letter or digit. Ids starting with `_` are reserved for keyward itself.
 */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** The tenant id of events about Pleo itself rather than one customer (provider incidents). */
export const PROVIDER_TENANT_ID = '_provider';

/**
 * The one order in which work on several tenants takes their locks (batches, group commits):
 * byte order, as Postgres sorts with `COLLATE "C"`. Tenant ids are ASCII, so JavaScript's string
 * order is that order. Two transactions locking several tenants in it cannot deadlock.
 */
export function compareTenantIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
const tenantId = z.union([z.string().regex(TENANT_ID_PATTERN), z.literal(PROVIDER_TENANT_ID)]);
const last4 = z.string().min(1).max(4);
const scopes = z.array(z.string().min(1).max(100)).max(200);

export const REJECTION_REASONS = ['invalid_key', 'company_mismatch', 'insufficient_scopes', 'unsupported_subject', 'malformed_key'] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

const INVALIDATION_REASONS = ['replaced', 'compromised', 'uninstalled'] as const;
const REVALIDATE_REASONS = ['auth_failures', 'probe', 'manual'] as const;
/** `rate_limited`: Pleo answered 429 for this credential — about its own budget, not about Pleo's health (ADR 18). */
export const REVALIDATION_OUTCOMES = ['valid', 'invalid', 'insufficient_scopes', 'unreachable', 'rate_limited'] as const;
export type RevalidationOutcome = (typeof REVALIDATION_OUTCOMES)[number];
export const SUBJECT_TYPES = ['company', 'organization'] as const;

const EVENT_DATA = {
  'key.submitted': z.strictObject({
    submissionId: uuid,
    credentialId: uuid,
    secretVersionId: z.string().min(1).max(64),
    last4,
    replacing: z.boolean(),
  }),
  'key.validated': z.strictObject({
    submissionId: uuid,
    credentialId: uuid,
    companyId: z.string().min(1).max(64),
    subjectType: z.enum(SUBJECT_TYPES),
    scopes,
  }),
  'key.rejected': z.strictObject({
    submissionId: uuid,
    credentialId: uuid,
    reason: z.enum(REJECTION_REASONS),
    missingScopes: scopes.optional(),
    message: z.string().max(500),
  }),
  'key.activated': z.strictObject({
    credentialId: uuid,
    companyId: z.string().min(1).max(64),
    previousCredentialId: uuid.optional(),
  }),
  'key.invalidated': z.strictObject({ credentialId: uuid, reason: z.enum(INVALIDATION_REASONS) }),
  'key.compromised': z.strictObject({ credentialId: uuid, reportedBy: z.string().min(1).max(100) }),
  // checkId: the connection.check_requested this revalidation answers (reason manual), carried through.
  'key.revalidate': z.strictObject({ credentialId: uuid, reason: z.enum(REVALIDATE_REASONS), checkId: uuid.optional() }),
  'key.revalidated': z.strictObject({
    credentialId: uuid,
    checkId: uuid.optional(),
    outcome: z.enum(REVALIDATION_OUTCOMES),
    scopes,
    missingScopes: scopes.optional(),
  }),
  'auth.failed': z.strictObject({
    credentialId: uuid.optional(),
    status: z.union([z.literal(401), z.literal(403)]),
    source: z.string().min(1).max(100),
    endpoint: z.string().max(300).optional(),
    observedAt: isoDate,
  }),
  // An integrator asked to check the active key now (intake); the monitor turns it into key.revalidate.
  'connection.check_requested': z.strictObject({ credentialId: uuid }),
  'connection.degraded': z.strictObject({ reason: z.string().max(100), since: isoDate }),
  'connection.recovered': z.strictObject({ reason: z.string().max(100), since: isoDate }),
  'connection.disabled': z.strictObject({ reason: z.string().max(100), since: isoDate }),
  'connection.uninstalled': z.strictObject({ reason: z.string().max(100), since: isoDate }),
  'alert.reconnection_required': z.strictObject({
    reason: z.string().max(100),
    companyId: z.string().max(64).nullable(),
    last4,
    since: isoDate,
    action: z.string().max(500),
    missingScopes: scopes.optional(),
  }),
  'provider.degraded': z.strictObject({ reason: z.string().max(100), since: isoDate, affectedTenants: z.number().int().min(0) }),
  'provider.recovered': z.strictObject({ reason: z.string().max(100), since: isoDate, affectedTenants: z.number().int().min(0) }),
} as const;

export type EventType = keyof typeof EVENT_DATA;
export const EVENT_TYPES = Object.keys(EVENT_DATA) as EventType[];

function isEventType(type: string): type is EventType {
  return Object.prototype.hasOwnProperty.call(EVENT_DATA, type);
}
export type EventData<T extends EventType> = z.infer<(typeof EVENT_DATA)[T]>;

const envelopeBase = {
  id: uuid,
  version: z.literal(1),
  occurredAt: isoDate,
  tenantId,
  correlationId: z.string().min(1).max(100),
  causationId: uuid.optional(),
  // Other backends of the integration publish auth.failed, so the producer is open-ended.
  producer: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/),
};

const ENVELOPE_SCHEMAS = Object.fromEntries(EVENT_TYPES.map((type) => [type, z.strictObject({ ...envelopeBase, type: z.literal(type), data: EVENT_DATA[type] })])) as unknown as {
  [T in EventType]: z.ZodType<EventEnvelope<T>>;
};

export interface EventEnvelope<T extends EventType = EventType> {
  id: string;
  type: T;
  version: 1;
  occurredAt: string;
  tenantId: string;
  correlationId: string;
  causationId?: string;
  producer: string;
  data: EventData<T>;
}

export type AnyEvent = { [T in EventType]: EventEnvelope<T> }[EventType];

export class EventSchemaError extends Error {
  constructor(
    readonly eventType: string,
    readonly issues: string[],
  ) {
    // Issues name paths and rules, never the offending values.
    super(`Event ${eventType} does not match its schema: ${issues.join('; ')}`);
    this.name = 'EventSchemaError';
  }
}

/** Checks an envelope against its type's schema; throws EventSchemaError naming paths only. */
export function parseEvent(input: unknown): AnyEvent {
  const type = (input as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !isEventType(type)) {
    // The claimed type is input too: not echoed.
    throw new EventSchemaError('(unknown)', ['unknown event type']);
  }
  const result = ENVELOPE_SCHEMAS[type].safeParse(input);
  if (!result.success) {
    throw new EventSchemaError(
      type,
      result.error.issues.map((issue) => {
        const path = issue.path.join('.') || '(envelope)';
        // Field names are input too (a pasted key can hide in one): count them, never name them.
        const keys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.length} field${issue.keys.length === 1 ? '' : 's'})` : '';
        return `${path}: ${issue.code}${keys}`;
      }),
    );
  }
  return result.data;
}
