import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import type { ConnectionFacts } from './health-decisions';

/**
 * What the monitor reads of the lifecycle tables rotation and intake own (`connections`,
 * `credentials`, `submissions`). It never writes them. Every method runs in the caller's transaction.
 */
@Injectable()
export class LifecycleFactsRepository {
  async connection(tx: EntityManager, tenantId: string): Promise<ConnectionFacts | undefined> {
    const [row] = await tx.query<ConnectionFacts[]>(
      `SELECT status, active_credential_id AS "activeCredentialId", company_id AS "companyId",
              CASE WHEN error_code = 'key_compromised' THEN error_detail->>'credentialId' END AS "compromisedCredentialId"
       FROM connections WHERE tenant_id = $1`,
      [tenantId],
    );
    return row;
  }

  /** The credential rotation invalidated as compromised most recently. */
  async lastCompromisedCredential(tx: EntityManager, tenantId: string): Promise<string | null> {
    const [row] = await tx.query<{ id: string }[]>(`SELECT id FROM credentials WHERE tenant_id = $1 AND invalidated_reason = 'compromised' ORDER BY invalidated_at DESC NULLS LAST LIMIT 1`, [
      tenantId,
    ]);
    return row?.id ?? null;
  }

  /** last4 of a credential for alerts and audit (credentials once decided, else its submission); `????` when neither knows it. */
  async last4(tx: EntityManager, credentialId: string): Promise<string> {
    return (await this.last4Many(tx, [credentialId])).get(credentialId)!;
  }

  /** `last4` of several credentials in one statement (a batch's degraded tenants), by credential id. */
  async last4Many(tx: EntityManager, credentialIds: string[]): Promise<Map<string, string>> {
    const rows = await tx.query<{ id: string; last4: string | null }[]>(
      `SELECT i.id, coalesce(c.last4, s.last4) AS last4
       FROM unnest($1::uuid[]) AS i(id)
       LEFT JOIN credentials c ON c.id = i.id
       LEFT JOIN LATERAL (SELECT last4 FROM submissions WHERE c.last4 IS NULL AND credential_id = i.id) s ON true`,
      [credentialIds],
    );
    const known = new Map(rows.map((r) => [r.id, r.last4]));
    return new Map(credentialIds.map((id) => [id, known.get(id) || '????']));
  }
}
