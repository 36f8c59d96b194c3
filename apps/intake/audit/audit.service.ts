import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditLog } from '@keyward/persistence';
import { Refusal } from '@keyward/contracts';

interface AuditEntryView {
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
  /** Pass as `cursor` for the next, older page; null on the last page. */
  nextCursor: string | null;
  chain: AuditChainView;
}

interface AuditChainView {
  /** Everything verified on this read is intact: the entries since the last read, and this page. */
  ok: boolean;
  /** Entries in the tenant's chain. */
  entries: number;
  /** The chain is verified from its first entry through this seq. */
  verifiedThroughSeq: number;
  brokenAtSeq?: number;
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `?since=` as an ISO 8601 date-time with a zone; anything else is refused rather than guessed. */
export function parseSince(value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const date = typeof value === 'string' && ISO_DATE_TIME.test(value) ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) throw new Refusal('invalid_since');
  return date;
}

export function parseLimit(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 1000)) throw new Refusal('invalid_request');
  return n;
}

/**
 * `?cursor=` as handed out in `nextCursor`: opaque to callers, the seq the next page starts
 * below. Anything else is refused rather than guessed.
 */
export function parseCursor(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? /^s([1-9]\d{0,9})$/.exec(value) : null;
  const seq = match ? Number(match[1]) : NaN;
  if (!(seq >= 1 && seq <= 2_147_483_647)) throw new Refusal('invalid_cursor');
  return seq;
}

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
