import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, In } from 'typeorm';
import type { EventEnvelope } from '@keyward/contracts';
import { ConnectionEntity, ConnectionHealthEntity, CredentialEntity, RevocationEntity } from '@keyward/persistence';
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
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(SubmissionRepository) private readonly submissions: SubmissionRepository,
  ) {}

  async snapshot(tenantId: string, manager: EntityManager = this.dataSource.manager): Promise<ConnectionSnapshot> {
    const connection = await manager.getRepository(ConnectionEntity).findOne({ where: { tenantId } });
    const activeId = connection?.activeCredentialId ?? null;
    // One after another: inside a transaction the manager has a single connection.
    const activeCredential = activeId ? await manager.getRepository(CredentialEntity).findOne({ where: { id: activeId } }) : null;
    const health = await manager.getRepository(ConnectionHealthEntity).findOne({ where: { tenantId } });
    const newest = await this.submissions.newest(tenantId, manager);
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

  /** Orders compromise and uninstall requests of one tenant. */
  async lockTenant(tx: EntityManager, tenantId: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`connection-actions:${tenantId}`]);
  }

  /** Credentials of the tenant nobody has decided on yet (pending, superseded or not). */
  async undecidedCredentialIds(tx: EntityManager, tenantId: string): Promise<string[]> {
    const rows = (await tx.query(
      `SELECT s.credential_id FROM submissions s
        WHERE s.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = s.credential_id)`,
      [tenantId],
    )) as { credential_id: string }[];
    return rows.map((r) => r.credential_id);
  }

  async revocationOf(tx: EntityManager, credentialId: string): Promise<RevocationEntity | null> {
    return tx.getRepository(RevocationEntity).findOne({ where: { credentialId } });
  }

  /** Inserts the revocations not yet present (a compromised credential stays compromised); returns those inserted. */
  async revoke(tx: EntityManager, revocation: Revocation): Promise<string[]> {
    if (revocation.credentialIds.length === 0) return [];
    const rows = (await tx.query(
      `INSERT INTO revocations (credential_id, tenant_id, reason, reported_by, correlation_id)
       SELECT id, $2, $3, $4, $5 FROM unnest($1::uuid[]) AS id
       ON CONFLICT (credential_id) DO NOTHING
       RETURNING credential_id`,
      [revocation.credentialIds, revocation.tenantId, revocation.reason, revocation.reportedBy, revocation.correlationId],
    )) as { credential_id: string }[];
    return rows.map((r) => r.credential_id);
  }

  /** The uninstall request behind a `connection.uninstalled` being staged in this transaction. */
  async recordUninstall(tx: EntityManager, event: EventEnvelope<'connection.uninstalled'>, requestedBy: string): Promise<void> {
    await tx.query(`INSERT INTO uninstalls (event_id, tenant_id, requested_by, correlation_id) VALUES ($1, $2, $3, $4)`, [
      event.id,
      event.tenantId,
      requestedBy,
      event.correlationId,
    ]);
  }
}
