import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { z } from 'zod';
import { createEvent } from '@keyward/contracts';
import { Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { Caller } from '../auth/caller';
import { INTAKE } from '../intake-identity';
import { encodeCursor, listItem } from './connection-list';
import type { CONNECTION_LIST } from './connection-list.schema';
import { ConnectionListRepository } from './connection-list.repository';
import { ConnectionRepository } from './connection.repository';
import type { UNINSTALL } from './connection.schema';
import { ConnectionStatus, ConnectionView, connectionView } from './connection-status';

/** Credentials this request revoked (active and pending); empty when a repeat. */
type UninstallResult = z.infer<typeof UNINSTALL>;

@Injectable()
export class ConnectionsService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(ConnectionRepository) private readonly connections: ConnectionRepository,
    @Inject(ConnectionListRepository) private readonly list: ConnectionListRepository,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  async view(tenantId: string): Promise<ConnectionView> {
    return connectionView(await this.connections.snapshot(this.dataSource.manager, tenantId));
  }

  /** One page of tenants by connection state, each as GET …/pleo/connection shows it, in short. */
  async page(query: { statuses: ConnectionStatus[] | null; after: string | null; limit: number }): Promise<z.infer<typeof CONNECTION_LIST>> {
    const db = this.dataSource.manager;
    const rows = await this.list.page(db, query.statuses, query.after, query.limit);
    const page = rows.slice(0, query.limit);
    const connections: z.infer<typeof CONNECTION_LIST>['connections'] = [];
    for (const row of page) {
      const snapshot = await this.connections.snapshot(db, row.tenantId);
      connections.push(listItem(connectionView(snapshot), snapshot.newest?.createdAt.toISOString() ?? null));
    }
    return { connections, nextCursor: rows.length > query.limit ? encodeCursor(page[page.length - 1].tenantId) : null };
  }

  /**
   * Uninstall: revokes the active and every undecided credential at once (no read path returns
   * them from the commit on), then `connection.uninstalled` lets rotation and monitor clean up.
   * A repeat of an uninstall that changed nothing publishes nothing.
   */
  async uninstall(tenantId: string, caller: Caller, correlationId: string): Promise<UninstallResult> {
    const revoked = await this.dataSource.transaction(async (tx) => {
      await this.connections.lockTenant(tx, tenantId);
      const snapshot = await this.connections.snapshot(tx, tenantId);
      const active = snapshot.connection?.activeCredentialId;
      const candidates = [...(active ? [active] : []), ...(await this.connections.undecidedCredentialIds(tx, tenantId))];
      const inserted = await this.connections.revoke(tx, { tenantId, credentialIds: candidates, reason: 'uninstalled', reportedBy: caller.actor, correlationId });
      if (snapshot.connection?.status === 'uninstalled' && inserted.length === 0) return inserted;
      const uninstalled = createEvent('connection.uninstalled', { tenantId, correlationId, producer: INTAKE.producer }, { reason: 'uninstall_requested', since: new Date().toISOString() });
      // Rotation confirms the event with this row before it uninstalls anything (ADR 0015).
      await this.connections.recordUninstall(tx, uninstalled, caller.actor);
      await Outbox.stage(tx, uninstalled);
      await AuditLog.append(tx, {
        tenantId,
        actor: caller.actor,
        action: 'connection.uninstall_requested',
        credentialId: active ?? null,
        last4: snapshot.activeCredential?.last4 ?? null,
        correlationId,
        details: { revokedCredentials: inserted },
      });
      return inserted;
    });
    this.logger.info('Uninstall requested', { revokedCredentials: revoked.length });
    return { tenantId, status: 'uninstalled', revokedCredentialIds: revoked };
  }
}
