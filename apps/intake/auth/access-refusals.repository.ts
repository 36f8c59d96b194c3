import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

/** Refusals of one refusing tenant at one targeted tenant are counted per window of this length. */
export const REFUSAL_WINDOW_SECONDS = 3600;
/** Counts older than this are forgotten (the audit entry of each window stays). */
const REFUSAL_RETENTION_DAYS = 90;

export interface Refusal {
  targetTenantId: string;
  sessionTenantId: string;
  route: string;
}

/**
 * `access_refusals` (intake's own, not chained): refused cross-tenant requests counted per
 * targeted tenant, refusing tenant and window. Only the first refusal of a window reaches the
 * targeted tenant's append-only audit log, so another tenant cannot grow it without bound.
 */
@Injectable()
export class AccessRefusalsRepository {
  /** Counts the refusal; true when it is the first of its window (then it is audited). */
  async record(tx: EntityManager, refusal: Refusal): Promise<{ firstInWindow: boolean; refusals: number }> {
    const [row] = await tx.query<{ refusals: number; inserted: boolean }[]>(
      `INSERT INTO access_refusals (target_tenant_id, session_tenant_id, window_start, last_route)
       VALUES ($1, $2, to_timestamp(floor(extract(epoch FROM now()) / $4) * $4), $3)
       ON CONFLICT (target_tenant_id, session_tenant_id, window_start)
         DO UPDATE SET refusals = access_refusals.refusals + 1, last_at = now(), last_route = EXCLUDED.last_route
       RETURNING refusals, (xmax = 0) AS inserted`,
      [refusal.targetTenantId, refusal.sessionTenantId, refusal.route, REFUSAL_WINDOW_SECONDS],
    );
    if (row.inserted) {
      // A new window: forget this target's counts past the retention, so the table stays bounded.
      await tx.query(`DELETE FROM access_refusals WHERE target_tenant_id = $1 AND window_start < now() - make_interval(days => $2)`, [refusal.targetTenantId, REFUSAL_RETENTION_DAYS]);
    }
    return { firstInWindow: row.inserted, refusals: row.refusals };
  }
}
