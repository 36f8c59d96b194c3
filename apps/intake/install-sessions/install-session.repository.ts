import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { InstallSessionEntity, PipelinedStatement } from '@keyward/persistence';

export interface StoredInstallSession {
  tenantId: string;
  expiresAt: Date;
  returnUrl: string | null;
  /** The status of the credential the session submitted, if it submitted one. */
  credentialStatus: string | null;
}

/** `install_sessions`, intake's own table: only a token's SHA-256 is ever stored. */
@Injectable()
export class InstallSessionRepository {
  async insert(tx: EntityManager, session: { tokenHash: string; tenantId: string; createdBy: string; expiresAt: Date; returnUrl: string | null }): Promise<void> {
    await tx.getRepository(InstallSessionEntity).insert(session);
  }

  async find(db: EntityManager, tokenHash: string): Promise<StoredInstallSession | undefined> {
    const [row] = await db.query<{ tenant_id: string; expires_at: Date; return_url: string | null; credential_status: string | null }[]>(
      `SELECT s.tenant_id, s.expires_at, s.return_url, c.status AS credential_status
         FROM install_sessions s
         LEFT JOIN submissions sub ON sub.id = s.submission_id
         LEFT JOIN credentials c ON c.id = sub.credential_id
        WHERE s.token_hash = $1`,
      [tokenHash],
    );
    return row && { tenantId: row.tenant_id, expiresAt: row.expires_at, returnUrl: row.return_url, credentialStatus: row.credential_status };
  }

  async recordSubmission(tx: EntityManager, tokenHash: string, submissionId: string): Promise<void> {
    const { text, values } = this.submissionRecord(tokenHash, submissionId);
    await tx.query(text, values);
  }

  /** `recordSubmission`'s statement, to send with the submission's commit. */
  submissionRecord(tokenHash: string, submissionId: string): PipelinedStatement {
    return { name: 'intake_install_session_submission', text: 'UPDATE install_sessions SET submission_id = $2 WHERE token_hash = $1', values: [tokenHash, submissionId] };
  }

  /** How many sessions that expired before `before` were deleted. */
  async pruneExpiredBefore(db: EntityManager, before: Date): Promise<number> {
    const [, deleted] = await db.query<[unknown[], number]>('DELETE FROM install_sessions WHERE expires_at < $1', [before]);
    return deleted;
  }
}
