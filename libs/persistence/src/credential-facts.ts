import type { EntityManager } from 'typeorm';
import { preparedQuery } from './prepared-query';

export interface RevocationFact {
  reason: 'compromised' | 'uninstalled';
  tenantId: string;
}

/**
 * Whether a credential is revoked, asked one way everywhere: its revocation row as committed
 * when asked. A revoked credential never serves again, whatever else is true of it.
 */
export async function revocationOf(db: EntityManager, credentialId: string): Promise<RevocationFact | undefined> {
  const rows = await preparedQuery<RevocationFact>(db, 'revocation_of', `SELECT reason, tenant_id AS "tenantId" FROM revocations WHERE credential_id = $1`, [credentialId]);
  return rows[0];
}

export interface PendingSubmissionFact {
  id: string;
  credentialId: string;
}

/**
 * The tenant's newest submission while it waits for a verdict (view `newest_pending_submissions`:
 * newest by seq, not superseded, nothing decided about its credential); none otherwise.
 */
export async function newestPendingSubmission(db: EntityManager, tenantId: string): Promise<PendingSubmissionFact | undefined> {
  const rows = await preparedQuery<PendingSubmissionFact>(db, 'newest_pending_submission', `SELECT id, credential_id AS "credentialId" FROM newest_pending_submissions WHERE tenant_id = $1`, [
    tenantId,
  ]);
  return rows[0];
}
