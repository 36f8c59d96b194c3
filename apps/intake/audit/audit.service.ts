import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { z } from 'zod';
import { AuditLog } from '@keyward/persistence';
import type { AUDIT_LOG } from './audit.schema';

/** One page of a tenant's audit log, as GET …/audit answers it. */
type AuditLogView = z.infer<typeof AUDIT_LOG>;

function cursorOf(beforeSeq: number | null): string | null {
  return beforeSeq === null ? null : `s${beforeSeq}`;
}

@Injectable()
export class AuditService {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * One page of the tenant's entries, newest first. The chain is verified incrementally: the
   * entries appended since the last read, and the entries of this page against their neighbours,
   * so a read costs a page plus what is new, however long the log (ADR 20).
   */
  async read(tenantId: string, options: { since?: Date; limit?: number; cursor?: number }): Promise<AuditLogView> {
    const page = await AuditLog.page(this.dataSource.manager, tenantId, { since: options.since, limit: options.limit, beforeSeq: options.cursor });
    const chain = await AuditLog.verifyIncrementally(this.dataSource.manager, tenantId);
    const brokenAtSeq = [chain.brokenAtSeq, page.brokenAtSeq].filter((seq): seq is number => seq !== undefined).sort((a, b) => a - b)[0];
    return {
      tenantId,
      nextCursor: cursorOf(page.nextBeforeSeq),
      chain: {
        ok: chain.ok && page.ok,
        entries: chain.entries,
        verifiedThroughSeq: chain.verifiedThroughSeq,
        ...(brokenAtSeq !== undefined ? { brokenAtSeq } : {}),
      },
      entries: page.entries.map((e) => ({
        seq: e.seq,
        occurredAt: e.occurredAt.toISOString(),
        actor: e.actor,
        action: e.action,
        credentialId: e.credentialId,
        last4: e.last4,
        correlationId: e.correlationId,
        details: e.details,
      })),
    };
  }
}
