import { randomUUID } from 'node:crypto';
import { EventData, EventEnvelope, EventType, parseEvent } from './events';

/** Envelopes built (and checked) here, frozen so they cannot change after the check. */
const checked = new WeakSet<object>();

/** True for an envelope from `createEvent`: already checked against its schema and immutable. */
export function isCheckedEvent(event: object): boolean {
  return checked.has(event);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export interface EventOrigin {
  tenantId: string;
  correlationId: string;
  /** The event that caused this one; absent for an event that starts a flow. */
  causationId?: string;
  producer: string;
}

/** Builds a validated envelope. Throws EventSchemaError for an unknown or missing field. */
export function createEvent<T extends EventType>(type: T, origin: EventOrigin, data: EventData<T>): EventEnvelope<T> {
  const envelope = {
    id: randomUUID(),
    type,
    version: 1 as const,
    occurredAt: new Date().toISOString(),
    tenantId: origin.tenantId,
    correlationId: origin.correlationId,
    ...(origin.causationId ? { causationId: origin.causationId } : {}),
    producer: origin.producer,
    data,
  };
  const event = deepFreeze(parseEvent(envelope)) as EventEnvelope<T>;
  checked.add(event);
  return event;
}

/** The origin for an event caused by `cause`: same tenant and correlation, cause's id. */
export function causedBy(cause: EventEnvelope, producer: string): EventOrigin {
  return { tenantId: cause.tenantId, correlationId: cause.correlationId, causationId: cause.id, producer };
}
