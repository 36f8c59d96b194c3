import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { ConnectionStatus } from './connection-status';

/**
 * The tenants' statuses in one query, derived as `connection-status.ts` derives one tenant's (the
 * list test compares both): lifecycle and revocation of the active key first, then the health of
 * the active key, then a pending newest submission. Used to filter and page; each row shown is
 * then read in full through the same snapshot as GET …/pleo/connection.
 */
const STATUS_SQL = `
  WITH tenants AS (SELECT tenant_id FROM connections UNION SELECT tenant_id FROM submissions),
  facts AS (
    SELECT t.tenant_id, k.status AS lifecycle, r.reason AS active_revocation, h.state AS health_state,
           n.credential_id AS newest_credential, n.superseded_at, nc.status AS newest_status, nr.reason AS newest_revocation
      FROM tenants t
      LEFT JOIN connections k ON k.tenant_id = t.tenant_id
      LEFT JOIN revocations r ON r.credential_id = k.active_credential_id
      LEFT JOIN connection_health h ON h.tenant_id = t.tenant_id AND h.credential_id = k.active_credential_id
      LEFT JOIN LATERAL (SELECT s.credential_id, s.superseded_at FROM submissions s WHERE s.tenant_id = t.tenant_id ORDER BY s.seq DESC LIMIT 1) n ON true
      LEFT JOIN credentials nc ON nc.id = n.credential_id
      LEFT JOIN revocations nr ON nr.credential_id = n.credential_id
  )
  SELECT tenant_id, CASE
      WHEN lifecycle = 'disabled' OR active_revocation = 'compromised' THEN 'disabled'
      WHEN lifecycle = 'uninstalled' OR active_revocation = 'uninstalled' THEN 'uninstalled'
      WHEN lifecycle = 'active' AND health_state = 'degraded' THEN 'degraded'
      WHEN lifecycle = 'active' AND health_state = 'reconnect_required' THEN 'reconnect_required'
      WHEN lifecycle = 'active' THEN 'active'
      WHEN newest_credential IS NOT NULL AND superseded_at IS NULL AND newest_status IS NULL AND newest_revocation IS NULL THEN 'pending_validation'
      ELSE 'not_connected' END AS status
    FROM facts`;

@Injectable()
export class ConnectionListRepository {
  /** Tenant ids after `after` (by id), with the wanted statuses; one more than `limit` tells there is a next page. */
  async page(db: EntityManager, statuses: ConnectionStatus[] | null, after: string | null, limit: number): Promise<{ tenantId: string; status: ConnectionStatus }[]> {
    const rows = await db.query<{ tenant_id: string; status: ConnectionStatus }[]>(
      `SELECT tenant_id, status FROM (${STATUS_SQL}) x
        WHERE ($1::text[] IS NULL OR status = ANY($1)) AND ($2::text IS NULL OR tenant_id > $2)
        ORDER BY tenant_id LIMIT $3`,
      [statuses, after, limit + 1],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id, status: r.status }));
  }
}
