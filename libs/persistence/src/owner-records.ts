import type { EntityManager } from 'typeorm';
import type { EventData, EventEnvelope } from '@keyward/contracts';
import { UninstallEntity } from './entities/uninstall.entity';
import { ValidationEntity } from './entities/validation.entity';

/**
 * What an event's owner recorded when it staged it (ADR 0015). A consumer looks the record up by
 * the event's id and acts on the record, never on the message's data: a message anyone could
 * have published confirms nothing. No record, or one about something else, means the event was
 * not published by its owner.
 */
export type VerdictEvent = EventEnvelope<'key.validated'> | EventEnvelope<'key.rejected'> | EventEnvelope<'key.revalidated'>;

export function readValidation(manager: EntityManager, eventId: string): Promise<ValidationEntity | null> {
  return manager.getRepository(ValidationEntity).findOne({ where: { eventId } });
}

export function readUninstall(manager: EntityManager, eventId: string): Promise<UninstallEntity | null> {
  return manager.getRepository(UninstallEntity).findOne({ where: { eventId } });
}

/** The validator's verdict as event data, when the record is this event's; otherwise null. */
export function confirmVerdict<E extends VerdictEvent>(event: E, record: ValidationEntity | null): E['data'] | null {
  if (!record || record.eventType !== event.type || record.tenantId !== event.tenantId || record.credentialId !== event.data.credentialId) return null;
  switch (event.type) {
    case 'key.validated': {
      if (record.outcome !== 'validated' || record.submissionId !== event.data.submissionId || !record.companyId || !record.subjectType) return null;
      const data: EventData<'key.validated'> = {
        submissionId: record.submissionId,
        credentialId: record.credentialId,
        companyId: record.companyId,
        subjectType: record.subjectType,
        scopes: record.scopes,
      };
      return data;
    }
    case 'key.rejected': {
      if (record.outcome !== 'rejected' || record.submissionId !== event.data.submissionId || !record.reason) return null;
      const data: EventData<'key.rejected'> = {
        submissionId: record.submissionId,
        credentialId: record.credentialId,
        reason: record.reason as EventData<'key.rejected'>['reason'],
        ...(record.missingScopes ? { missingScopes: record.missingScopes } : {}),
        message: record.message ?? '',
      };
      return data;
    }
    case 'key.revalidated': {
      const data: EventData<'key.revalidated'> = {
        credentialId: record.credentialId,
        outcome: record.outcome as EventData<'key.revalidated'>['outcome'],
        scopes: record.scopes,
        ...(record.missingScopes ? { missingScopes: record.missingScopes } : {}),
      };
      return data;
    }
  }
  return null;
}

/** Intake's uninstall request behind this event, when there is one for this tenant. */
export function confirmUninstall(event: EventEnvelope<'connection.uninstalled'>, record: UninstallEntity | null): boolean {
  return record !== null && record.tenantId === event.tenantId;
}
