import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { registerSecret } from '@keyward/observability';
import { AuditLog, InstallSessionEntity } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { installSessionTokenHash, newInstallSessionToken } from '@keyward/service-auth';

export interface MintedInstallSession {
  token: string;
  tenantId: string;
  expiresAt: string;
}

export type InstallSessionLookup =
  | { state: 'valid'; tenantId: string; expiresAt: Date; tokenHash: string }
  | { state: 'expired' }
  | { state: 'unknown' };

/** Expired sessions are kept a day (so "expired" can be told from "unknown"), then pruned. */
const KEEP_EXPIRED_MS = 24 * 3600_000;

@Injectable()
export class InstallSessionsService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
  ) {}

  /** Mints a short-lived token for one tenant; only its SHA-256 is stored. */
  async mint(tenantId: string, caller: Caller, correlationId: string): Promise<MintedInstallSession> {
    const token = newInstallSessionToken();
    registerSecret(token);
    const tokenHash = installSessionTokenHash(token);
    const expiresAt = new Date(Date.now() + this.config.auth.installSessionTtlSeconds * 1000);
    await this.dataSource.transaction(async (tx) => {
      await tx.getRepository(InstallSessionEntity).insert({ tokenHash, tenantId, createdBy: caller.actor, expiresAt });
      await AuditLog.append(tx, {
        tenantId,
        actor: caller.actor,
        action: 'install_session.created',
        correlationId,
        details: { expiresAt: expiresAt.toISOString() },
      });
    });
    await this.pruneExpired();
    return { token, tenantId, expiresAt: expiresAt.toISOString() };
  }

  async lookup(token: string): Promise<InstallSessionLookup> {
    const tokenHash = installSessionTokenHash(token);
    const session = await this.dataSource.getRepository(InstallSessionEntity).findOne({ where: { tokenHash } });
    if (!session) return { state: 'unknown' };
    if (session.expiresAt.getTime() <= Date.now()) return { state: 'expired' };
    return { state: 'valid', tenantId: session.tenantId, expiresAt: session.expiresAt, tokenHash };
  }

  private async pruneExpired(): Promise<void> {
    await this.dataSource.query('DELETE FROM install_sessions WHERE expires_at < $1', [new Date(Date.now() - KEEP_EXPIRED_MS)]);
  }
}
