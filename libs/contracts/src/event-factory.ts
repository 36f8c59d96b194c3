import { randomUUID } from 'node:crypto';
import { EventData, EventEnvelope, EventType, parseEvent } from './events';

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
  return parseEvent(envelope) as EventEnvelope<T>;
}

/** The origin for an event caused by `cause`: same tenant and correlation, cause's id. */
export function causedBy(cause: EventEnvelope, producer: string): EventOrigin {
  return { tenantId: cause.tenantId, correlationId: cause.correlationId, causationId: cause.id, producer };
}
