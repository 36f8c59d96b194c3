import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createEvent } from '@keyward/contracts';
import { Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { ConnectionRepository } from '../connections/connection.repository';
import { IntakeError } from '../http/intake-error';

export interface CompromiseResult {
  status: 'disabled';
  credentialId: string;
  /** False when the same compromise was already reported (nothing new published). */
  newlyRevoked: boolean;
}

/**
 * A reported compromise: the revocation of the active credential commits before the answer, so
 * from then on no read path returns the key; `key.compromised` in the same transaction lets
 * rotation tombstone the secret and disable the connection.
 */
@Injectable()
export class CompromiseService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ConnectionRepository) private readonly connections: ConnectionRepository,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  async report(tenantId: string, caller: Caller, correlationId: string): Promise<CompromiseResult> {
    const result = await this.dataSource.transaction(async (tx): Promise<CompromiseResult> => {
      await this.connections.lockTenant(tx, tenantId);
      const snapshot = await this.connections.snapshot(tenantId, tx);
      const credentialId = snapshot.connection?.activeCredentialId;
      if (!credentialId || snapshot.connection?.status === 'uninstalled') throw new IntakeError(409, 'no_active_key');
      const existing = await this.connections.revocationOf(tx, credentialId);
      if (existing?.reason === 'compromised') return { status: 'disabled', credentialId, newlyRevoked: false };
      if (existing) throw new IntakeError(409, 'no_active_key');
      if (snapshot.connection?.status === 'disabled') return { status: 'disabled', credentialId, newlyRevoked: false };

      await this.connections.revoke(tx, { tenantId, credentialIds: [credentialId], reason: 'compromised', reportedBy: caller.actor, correlationId });
      await Outbox.stage(tx, createEvent('key.compromised', { tenantId, correlationId, producer: 'intake' }, { credentialId, reportedBy: caller.actor }));
      await AuditLog.append(tx, {
        tenantId,
        actor: caller.actor,
        action: 'key.compromise_reported',
        credentialId,
        last4: snapshot.activeCredential?.last4 ?? null,
        correlationId,
      });
      return { status: 'disabled', credentialId, newlyRevoked: true };
    });
    this.logger.warn('Key reported compromised; credential revoked', { credentialId: result.credentialId, repeat: !result.newlyRevoked });
    return result;
  }
}
