import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { KeywardLogger } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { SECRET_STORE, SecretStore } from '@keyward/secrets';

const PURGE_EVERY_MS = 60 * 60_000;

/**
 * The local store's counterpart of Secrets Manager's own clean-up: once an uninstalled tenant's
 * recovery window has passed, its sealed versions are deleted for good and the tenant's audit
 * log says so. Replicas share the work (the store claims rows with SKIP LOCKED).
 */
@Injectable()
export class SecretPurgeScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private readonly logger: KeywardLogger;

  constructor(
    @Inject(SECRET_STORE) private readonly store: SecretStore,
    @Inject(KeywardLogger) logger: KeywardLogger,
  ) {
    this.logger = logger.child({ component: 'secret-purge' });
  }

  onApplicationBootstrap(): void {
    if (!this.store.purgeExpired) return; // Secrets Manager purges by itself
    this.timer = setInterval(() => void this.purge().catch((err) => this.logger.warn('Secret purge round failed; next round retries', { err })), PURGE_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /**
   * One round: returns the tenants whose secret was deleted for good. Each tenant's
   * `secret.purged` entry commits in the deletion's own transaction: no purge without its trail.
   */
  async purge(): Promise<string[]> {
    const tenants =
      (await this.store.purgeExpired?.(async (tx, purged) => {
        for (const tenantId of purged) {
          await AuditLog.append(tx, { tenantId, actor: 'service:rotation', action: 'secret.purged', details: { reason: 'recovery_window_passed' } });
        }
      })) ?? [];
    if (tenants.length > 0) this.logger.info('Deleted secrets whose recovery window had passed', { tenants: tenants.length });
    return tenants;
  }
}
