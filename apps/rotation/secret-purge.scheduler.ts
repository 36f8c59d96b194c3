import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { KeywardLogger, PeriodicTask } from '@keyward/observability';
import { AuditLog } from '@keyward/persistence';
import { SECRET_STORE, SecretStore } from '@keyward/secrets';
import { ROTATION } from './rotation-identity';

const PURGE_EVERY_MS = 60 * 60_000;

/**
 * The local store's counterpart of Secrets Manager's own clean-up: once an uninstalled tenant's
 * recovery window has passed, its sealed versions are deleted for good and the tenant's audit
 * log says so. Replicas share the work (the store claims rows with SKIP LOCKED).
 */
@Injectable()
export class SecretPurgeScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private task?: PeriodicTask;
  private readonly logger: KeywardLogger;

  constructor(
    @Inject(SECRET_STORE) private readonly store: SecretStore,
    @Inject(KeywardLogger) logger: KeywardLogger,
  ) {
    this.logger = logger.child({ component: 'secret-purge' });
  }

  onApplicationBootstrap(): void {
    if (!this.store.purgeExpired) return; // Secrets Manager purges by itself
    this.task = new PeriodicTask({
      round: async () => void (await this.purge()),
      intervalMs: PURGE_EVERY_MS,
      startImmediately: false,
      onFailure: (err) => this.logger.warn('Secret purge round failed; next round retries', { err }),
      backoff: { initialMs: PURGE_EVERY_MS, maxMs: PURGE_EVERY_MS },
    });
    this.task.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task?.stop();
  }

  /**
   * One round: returns the tenants whose secret was deleted for good. Each tenant's
   * `secret.purged` entry commits in the deletion's own transaction: no purge without its trail.
   */
  async purge(): Promise<string[]> {
    const tenants =
      (await this.store.purgeExpired?.(async (tx, purged) => {
        for (const tenantId of purged) {
          await AuditLog.append(tx, { tenantId, actor: ROTATION.actor, action: 'secret.purged', details: { reason: 'recovery_window_passed' } });
        }
      })) ?? [];
    if (tenants.length > 0) this.logger.info('Deleted secrets whose recovery window had passed', { tenants: tenants.length });
    return tenants;
  }
}
