import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { createEvent, Refusal } from '@keyward/contracts';
import { Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { ConnectionRepository } from '../connections/connection.repository';
import { INTAKE } from '../intake-identity';

export interface CompromiseResult {
  /**
   * `disabled`: the key was the tenant's current one, the connection is disabled. `revoked`: the
   * key was not current (pending, replaced or uninstalled); it can never be used again and the
   * connection is unchanged.
   */
  status: 'disabled' | 'revoked';
  credentialId: string;
  last4: string;
  /** False when the same compromise was already reported (nothing new published). */
  newlyRevoked: boolean;
}

/**
 * A reported compromise: the revocation of the named credential (by default the current one)
 * commits before the answer, so from then on no read path returns the key; `key.compromised` in
 * the same transaction lets rotation tombstone the secret and disable the connection. It runs
 * under the tenant's current-key lock, in one order with rotation's activations, so the answer
 * names the key that was current when the report committed.
 */
@Injectable()
export class CompromiseService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ConnectionRepository) private readonly connections: ConnectionRepository,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  async report(tenantId: string, caller: Caller, correlationId: string, requestedCredentialId?: string): Promise<CompromiseResult> {
    const result = await this.dataSource.transaction(async (tx): Promise<CompromiseResult> => {
      await this.connections.lockTenant(tx, tenantId);
      const snapshot = await this.connections.snapshot(tx, tenantId);
      const connection = snapshot.connection;
      const currentId = connection && connection.status !== 'uninstalled' ? connection.activeCredentialId : null;
      const target = await this.target(tx, tenantId, requestedCredentialId, currentId);
      const { credentialId, last4 } = target;
      const existing = await this.connections.revocationOf(tx, credentialId);
      // A key already revoked by an uninstall was no longer in service, whatever rotation shows yet.
      const status = credentialId === currentId && existing?.reason !== 'uninstalled' ? 'disabled' : 'revoked';
      if (existing?.reason === 'compromised') return { status, credentialId, last4, newlyRevoked: false };
      if (existing) {
        await this.connections.markCompromised(tx, { tenantId, credentialId, reportedBy: caller.actor, correlationId });
      } else {
        await this.connections.revoke(tx, { tenantId, credentialIds: [credentialId], reason: 'compromised', reportedBy: caller.actor, correlationId });
      }
      await Outbox.stage(tx, createEvent('key.compromised', { tenantId, correlationId, producer: INTAKE.producer }, { credentialId, reportedBy: caller.actor }));
      await AuditLog.append(tx, {
        tenantId,
        actor: caller.actor,
        action: 'key.compromise_reported',
        credentialId,
        last4,
        correlationId,
        details: { wasCurrent: status === 'disabled', previouslyRevokedFor: existing?.reason ?? null },
      });
      return { status, credentialId, last4, newlyRevoked: true };
    });
    this.logger.warn('Key reported compromised; credential revoked', { credentialId: result.credentialId, wasCurrent: result.status === 'disabled', repeat: !result.newlyRevoked });
    return result;
  }

  /**
   * The key a report means: the one it names (any key ever submitted for the tenant), else the
   * current one, else the one the tenant's uninstall took out of service — an uninstalled key can
   * leak too, and must never be accepted again.
   */
  private async target(tx: EntityManager, tenantId: string, requestedId: string | undefined, currentId: string | null): Promise<{ credentialId: string; last4: string }> {
    if (requestedId) {
      const named = await this.connections.submittedCredential(tx, tenantId, requestedId);
      if (!named) throw new Refusal('credential_not_found');
      return named;
    }
    const key = currentId ? await this.connections.submittedCredential(tx, tenantId, currentId) : await this.connections.lastUninstalledKey(tx, tenantId);
    if (!key) throw new Refusal('no_active_key');
    return key;
  }
}
