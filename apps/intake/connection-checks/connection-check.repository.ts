import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { RevalidationRecord } from './check-outcome';

/**
 * A check is two audit entries that carry its id: intake's `connection.check_requested` and the
 * validator's `credential.revalidated` answer (ADR 24). Read here, written by `AuditLog.append`.
 */
@Injectable()
export class ConnectionCheckRepository {
  async requestedAt(db: EntityManager, tenantId: string, checkId: string): Promise<Date | undefined> {
    const [row] = await db.query<{ occurred_at: Date }[]>(`SELECT occurred_at FROM audit_log WHERE tenant_id = $1 AND action = 'connection.check_requested' AND details->>'checkId' = $2 LIMIT 1`, [
      tenantId,
      checkId,
    ]);
    return row?.occurred_at;
  }

  async answer(db: EntityManager, tenantId: string, checkId: string): Promise<RevalidationRecord | undefined> {
    const [row] = await db.query<{ occurred_at: Date; details: RevalidationRecord['details'] }[]>(
      `SELECT occurred_at, details FROM audit_log WHERE tenant_id = $1 AND action = 'credential.revalidated' AND details->>'checkId' = $2 ORDER BY id LIMIT 1`,
      [tenantId, checkId],
    );
    return row && { occurredAt: row.occurred_at, details: row.details };
  }
}
