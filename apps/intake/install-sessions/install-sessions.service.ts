import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { z } from 'zod';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { registerSecret } from '@keyward/observability';
import { AuditLog, PipelinedStatement } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { installSessionTokenHash, newInstallSessionToken } from '@keyward/service-auth';
import { InstallSessionRepository } from './install-session.repository';
import type { INSTALL_SESSION, INSTALL_SESSION_INFO } from './install-session.schema';
import { connectUrl, isAllowedReturnUrl } from './return-url';
import { Refusal } from '@keyward/contracts';

/** A new session: its token (shown once) and the hosted page with the token in the fragment. */
type MintedInstallSession = z.infer<typeof INSTALL_SESSION>;
type InstallSessionInfo = z.infer<typeof INSTALL_SESSION_INFO>;

export type InstallSessionLookup = { state: 'valid'; tenantId: string; expiresAt: Date; tokenHash: string; used: boolean; returnUrl: string | null } | { state: 'expired' } | { state: 'unknown' };

@Injectable()
export class InstallSessionsService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(InstallSessionRepository) private readonly repository: InstallSessionRepository,
  ) {}

  /** Mints a short-lived token for one tenant; only its SHA-256 is stored. */
  async mint(tenantId: string, returnUrl: string | null, caller: Caller, correlationId: string): Promise<MintedInstallSession> {
    if (returnUrl !== null && !isAllowedReturnUrl(returnUrl, this.config.connect.returnUrlPrefixes)) throw new Refusal('return_url_not_allowed');
    const token = newInstallSessionToken();
    registerSecret(token);
    const tokenHash = installSessionTokenHash(token);
    const expiresAt = new Date(Date.now() + this.config.auth.installSessionTtlSeconds * 1000);
    await this.dataSource.transaction(async (tx) => {
      await this.repository.insert(tx, { tokenHash, tenantId, createdBy: caller.actor, expiresAt, returnUrl });
      await AuditLog.append(tx, {
        tenantId,
        actor: caller.actor,
        action: 'install_session.created',
        correlationId,
        details: { expiresAt: expiresAt.toISOString(), returnUrl },
      });
    });
    return { token, tenantId, expiresAt: expiresAt.toISOString(), connectUrl: connectUrl(this.config.connect.publicUrl, token), returnUrl };
  }

  /** A session is used once the key it submitted was accepted (rotation activated its credential). */
  async lookup(token: string): Promise<InstallSessionLookup> {
    const tokenHash = installSessionTokenHash(token);
    const session = await this.repository.find(this.dataSource.manager, tokenHash);
    if (!session) return { state: 'unknown' };
    if (session.expiresAt.getTime() <= Date.now()) return { state: 'expired' };
    const used = session.credentialStatus === 'active' || session.credentialStatus === 'invalidated';
    return { state: 'valid', tenantId: session.tenantId, expiresAt: session.expiresAt, tokenHash, used, returnUrl: session.returnUrl };
  }

  /** What the connect page needs to start: the tenant, the expiry and where to go back to. */
  async describe(caller: Extract<Caller, { kind: 'install-session' }>): Promise<InstallSessionInfo> {
    if (caller.used) throw new Refusal('install_session_used');
    const session = await this.repository.find(this.dataSource.manager, caller.tokenHash);
    return { tenantId: caller.tenantId, expiresAt: caller.expiresAt.toISOString(), returnUrl: session?.returnUrl ?? null };
  }

  /** Remembers the submission a session made, inside the submission's transaction. */
  async recordSubmission(tx: EntityManager, tokenHash: string, submissionId: string): Promise<void> {
    await this.repository.recordSubmission(tx, tokenHash, submissionId);
  }

  /** `recordSubmission` as a write to send with the submission's transaction. */
  submissionRecord(tokenHash: string, submissionId: string): PipelinedStatement {
    return this.repository.submissionRecord(tokenHash, submissionId);
  }
}
