import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { z } from 'zod';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { registerSecret } from '@keyward/observability';
import { AuditLog, InstallSessionEntity } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { installSessionTokenHash, newInstallSessionToken } from '@keyward/service-auth';
import type { INSTALL_SESSION, INSTALL_SESSION_INFO } from './install-session.schema';
import { connectUrl, isAllowedReturnUrl } from './return-url';
import { Refusal } from '@keyward/contracts';

/** A new session: its token (shown once) and the hosted page with the token in the fragment. */
type MintedInstallSession = z.infer<typeof INSTALL_SESSION>;
type InstallSessionInfo = z.infer<typeof INSTALL_SESSION_INFO>;

export type InstallSessionLookup = { state: 'valid'; tenantId: string; expiresAt: Date; tokenHash: string; used: boolean; returnUrl: string | null } | { state: 'expired' } | { state: 'unknown' };

/** Expired sessions are kept a day (so "expired" can be told from "unknown"), then pruned. */
const KEEP_EXPIRED_MS = 24 * 3600_000;

@Injectable()
export class InstallSessionsService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
  ) {}

  /** Mints a short-lived token for one tenant; only its SHA-256 is stored. */
  async mint(tenantId: string, returnUrl: string | null, caller: Caller, correlationId: string): Promise<MintedInstallSession> {
    if (returnUrl !== null && !isAllowedReturnUrl(returnUrl, this.config.connect.returnUrlPrefixes)) throw new Refusal('return_url_not_allowed');
    const token = newInstallSessionToken();
    registerSecret(token);
    const tokenHash = installSessionTokenHash(token);
    const expiresAt = new Date(Date.now() + this.config.auth.installSessionTtlSeconds * 1000);
    await this.dataSource.transaction(async (tx) => {
      await tx.getRepository(InstallSessionEntity).insert({ tokenHash, tenantId, createdBy: caller.actor, expiresAt, returnUrl });
      await AuditLog.append(tx, {
        tenantId,
        actor: caller.actor,
        action: 'install_session.created',
        correlationId,
        details: { expiresAt: expiresAt.toISOString(), returnUrl },
      });
    });
    await this.pruneExpired();
    return { token, tenantId, expiresAt: expiresAt.toISOString(), connectUrl: connectUrl(this.config.connect.publicUrl, token), returnUrl };
  }

  /** A session is used once the key it submitted was accepted (rotation activated its credential). */
  async lookup(token: string): Promise<InstallSessionLookup> {
    const tokenHash = installSessionTokenHash(token);
    const rows = await this.dataSource.query<{ tenant_id: string; expires_at: Date; return_url: string | null; credential_status: string | null }[]>(
      `SELECT s.tenant_id, s.expires_at, s.return_url, c.status AS credential_status
         FROM install_sessions s
         LEFT JOIN submissions sub ON sub.id = s.submission_id
         LEFT JOIN credentials c ON c.id = sub.credential_id
        WHERE s.token_hash = $1`,
      [tokenHash],
    );
    const session = rows[0];
    if (!session) return { state: 'unknown' };
    if (session.expires_at.getTime() <= Date.now()) return { state: 'expired' };
    const used = session.credential_status === 'active' || session.credential_status === 'invalidated';
    return { state: 'valid', tenantId: session.tenant_id, expiresAt: session.expires_at, tokenHash, used, returnUrl: session.return_url };
  }

  /** What the connect page needs to start: the tenant, the expiry and where to go back to. */
  async describe(caller: Extract<Caller, { kind: 'install-session' }>): Promise<InstallSessionInfo> {
    if (caller.used) throw new Refusal('install_session_used');
    const session = await this.dataSource.getRepository(InstallSessionEntity).findOne({ where: { tokenHash: caller.tokenHash } });
    return { tenantId: caller.tenantId, expiresAt: caller.expiresAt.toISOString(), returnUrl: session?.returnUrl ?? null };
  }

  /** Remembers the submission a session made, inside the submission's transaction. */
  async recordSubmission(tx: EntityManager, tokenHash: string, submissionId: string): Promise<void> {
    await tx.query('UPDATE install_sessions SET submission_id = $2 WHERE token_hash = $1', [tokenHash, submissionId]);
  }

  private async pruneExpired(): Promise<void> {
    await this.dataSource.query('DELETE FROM install_sessions WHERE expires_at < $1', [new Date(Date.now() - KEEP_EXPIRED_MS)]);
  }
}
