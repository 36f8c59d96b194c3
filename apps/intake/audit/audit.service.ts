import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditChainReport, AuditLog } from '@keyward/persistence';
import { IntakeError } from '../http/intake-error';

export interface AuditEntryView {
  seq: number;
  occurredAt: string;
  actor: string;
  action: string;
  credentialId: string | null;
  last4: string | null;
  correlationId: string | null;
  details: Record<string, unknown>;
}

export interface AuditLogView {
  tenantId: string;
  entries: AuditEntryView[];
  chain: AuditChainReport;
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `?since=` as an ISO 8601 date-time with a zone; anything else is refused rather than guessed. */
export function parseSince(value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const date = typeof value === 'string' && ISO_DATE_TIME.test(value) ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) throw new IntakeError(400, 'invalid_since');
  return date;
}

export function parseLimit(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 1000)) throw new IntakeError(400, 'invalid_request');
  return n;
}

@Injectable()
export class AuditService {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** The tenant's entries, newest first, with the verification of its whole hash chain. */
  async read(tenantId: string, options: { since?: Date; limit?: number }): Promise<AuditLogView> {
    const [entries, chain] = await Promise.all([
      AuditLog.list(this.dataSource.manager, tenantId, options),
      AuditLog.verify(this.dataSource.manager, tenantId),
    ]);
    return {
      tenantId,
      entries: entries.map((e) => ({
        seq: e.seq,
        occurredAt: e.occurredAt.toISOString(),
        actor: e.actor,
        action: e.action,
        credentialId: e.credentialId,
        last4: e.last4,
        correlationId: e.correlationId,
        details: e.details,
      })),
      chain,
    };
  }
}
