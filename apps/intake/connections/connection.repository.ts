import { Inject, Injectable } from '@nestjs/common';
import { EntityManager, In } from 'typeorm';
import type { EventEnvelope } from '@keyward/contracts';
import { ConnectionEntity, ConnectionHealthEntity, CredentialEntity, RevocationEntity, Locks, LOCKS } from '@keyward/persistence';
import { SubmissionRepository } from '../submissions/submission.repository';
import { ConnectionSnapshot } from './connection-status';

export interface Revocation {
  tenantId: string;
  credentialIds: string[];
  reason: 'compromised' | 'uninstalled';
  reportedBy: string;
  correlationId: string;
}

/** Reads what a connection's status is derived from; writes `revocations` and `uninstalls` (intake's own tables). */
@Injectable()
export class ConnectionRepository {
  constructor(@Inject(SubmissionRepository) private readonly submissions: SubmissionRepository) {}

  async snapshot(manager: EntityManager, tenantId: string): Promise<ConnectionSnapshot> {
    const connection = await manager.getRepository(ConnectionEntity).findOne({ where: { tenantId } });
    const activeId = connection?.activeCredentialId ?? null;
    // One after another: inside a transaction the manager has a single connection.
    const activeCredential = activeId ? await manager.getRepository(CredentialEntity).findOne({ where: { id: activeId } }) : null;
    const health = await manager.getRepository(ConnectionHealthEntity).findOne({ where: { tenantId } });
    const newest = await this.submissions.newest(manager, tenantId);
    const ids = [activeId, newest?.credentialId].filter((id): id is string => !!id);
    const revocations = ids.length > 0 ? await manager.getRepository(RevocationEntity).find({ where: { credentialId: In(ids) } }) : [];
    const reasonOf = (id: string | null | undefined) => revocations.find((r) => r.credentialId === id)?.reason ?? null;
    return {
      tenantId,
      connection,
      // A credential that is not (or no longer) active does not speak for the connection.
      activeCredential: activeCredential?.status === 'active' || connection?.status !== 'active' ? activeCredential : null,
      activeRevocation: reasonOf(activeId),
      health,
      newest,
      newestRevoked: reasonOf(newest?.credentialId) !== null,
    };
  }

  /**
   * Orders compromise and uninstall requests of one tenant with each other and with rotation's
   * activations: the request sees every key activated before it, and an activation after it sees
   * its revocations, so the answer is true of the key that is current when it commits.
   */
  async lockTenant(tx: EntityManager, tenantId: string): Promise<void> {
    await Locks.hold(tx, LOCKS.currentKey(tenantId));
  }

  /** Credentials of the tenant nobody has decided on yet (pending, superseded or not). */
  async undecidedCredentialIds(tx: EntityManager, tenantId: string): Promise<string[]> {
    const rows = await tx.query<{ credential_id: string }[]>(
      `SELECT s.credential_id FROM submissions s
        WHERE s.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = s.credential_id)`,
      [tenantId],
    );
    return rows.map((r) => r.credential_id);
  }

  async revocationOf(tx: EntityManager, credentialId: string): Promise<RevocationEntity | null> {
    return tx.getRepository(RevocationEntity).findOne({ where: { credentialId } });
  }

  /** A credential of this tenant, by id, as submitted (any state); null when it is not the tenant's. */
  async submittedCredential(tx: EntityManager, tenantId: string, credentialId: string): Promise<{ credentialId: string; last4: string } | null> {
    const [row] = await tx.query<{ credential_id: string; last4: string }[]>(`SELECT credential_id, last4 FROM submissions WHERE tenant_id = $1 AND credential_id = $2`, [tenantId, credentialId]);
    return row ? { credentialId: row.credential_id, last4: row.last4 } : null;
  }

  /** The key the tenant's latest uninstall took out of service (it was active then), if any. */
  async lastUninstalledKey(tx: EntityManager, tenantId: string): Promise<{ credentialId: string; last4: string } | null> {
    const [row] = await tx.query<{ id: string; last4: string }[]>(
      `SELECT c.id, c.last4 FROM revocations r JOIN credentials c ON c.id = r.credential_id
        WHERE r.tenant_id = $1 AND r.reason = 'uninstalled' AND c.activated_at IS NOT NULL
        ORDER BY r.created_at DESC, c.activated_at DESC LIMIT 1`,
      [tenantId],
    );
    return row ? { credentialId: row.id, last4: row.last4 } : null;
  }

  /** A key revoked for uninstall and then reported compromised: from now on it counts as compromised. */
  async markCompromised(tx: EntityManager, revocation: Omit<Revocation, 'credentialIds' | 'reason'> & { credentialId: string }): Promise<void> {
    await tx.query(`UPDATE revocations SET reason = 'compromised', reported_by = $3, correlation_id = $4 WHERE credential_id = $1 AND tenant_id = $2 AND reason = 'uninstalled'`, [
      revocation.credentialId,
      revocation.tenantId,
      revocation.reportedBy,
      revocation.correlationId,
    ]);
  }

  /** Inserts the revocations not yet present (a compromised credential stays compromised); returns those inserted. */
  async revoke(tx: EntityManager, revocation: Revocation): Promise<string[]> {
    if (revocation.credentialIds.length === 0) return [];
    const rows = await tx.query<{ credential_id: string }[]>(
      `INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id)
       SELECT id, $2, $3, $4, $5 FROM unnest($1::uuid[]) AS id
       ON CONFLICT (credential_id) DO NOTHING
       RETURNING credential_id`,
      [revocation.credentialIds, revocation.tenantId, revocation.reason, revocation.reportedBy, revocation.correlationId],
    );
    return rows.map((r) => r.credential_id);
  }

  /** The uninstall request behind a `connection.uninstalled` being staged in this transaction. */
  async recordUninstall(tx: EntityManager, event: EventEnvelope<'connection.uninstalled'>, requestedBy: string): Promise<void> {
    await tx.query(`INSERT INTO uninstalls (event_id, tenant_id, requested_by, correlation_id) VALUES ($1, $2, $3, $4)`, [event.id, event.tenantId, requestedBy, event.correlationId]);
  }
}
