import { Inject, Injectable } from '@nestjs/common';
import { SECRET_STORE, SecretStore, SecretStoreError } from '@keyward/secrets';

export type PromotionResult = { promoted: true } | { promoted: false; currentVersionId: string | null };

/**
 * Where rotation moves a tenant's secret labels. Every step is idempotent against the state the
 * store is in, because it runs before the database commit: a crash in between leaves the label
 * moved and the redelivered event must be able to finish the job by running the step again.
 */
@Injectable()
export class SecretLabels {
  constructor(@Inject(SECRET_STORE) private readonly store: SecretStore) {}

  /**
   * Moves AWSCURRENT to `versionId` if it is on `expectedCurrentVersionId` (compare-and-swap).
   * Already on `versionId` counts as done. Anywhere else: not promoted, and where it is instead,
   * so the caller can decide from the database what that means.
   */
  async promote(tenantId: string, versionId: string, expectedCurrentVersionId: string | null): Promise<PromotionResult> {
    try {
      await this.store.promote(tenantId, versionId, expectedCurrentVersionId);
      return { promoted: true };
    } catch (error) {
      if (!(error instanceof SecretStoreError) || error.code !== 'conflict') throw error;
    }
    const currentVersionId = await this.currentVersionId(tenantId);
    if (currentVersionId === versionId) return { promoted: true };
    return { promoted: false, currentVersionId };
  }

  /**
   * Labels off a replaced, rejected or uninstalled version; a version that is gone needs nothing.
   * Nor does a secret awaiting deletion (Secrets Manager refuses label moves on it): its reads
   * are refused, and a reinstall promotes its own version explicitly.
   */
  async retire(tenantId: string, versionId: string): Promise<void> {
    if (await this.deletionScheduled(tenantId)) return;
    await ignoreMissing(() => this.store.retire(tenantId, versionId));
  }

  /**
   * After a compromise: no label and no readable value remain. A version never stored needs
   * nothing. A secret awaiting deletion (an uninstalled tenant) is restored for the moment it
   * takes — Secrets Manager refuses every change to it otherwise — and scheduled again for the
   * rest of its window: a reinstall must never bring the compromised value back.
   */
  async disable(tenantId: string, versionId: string): Promise<'disabled'> {
    const deletionScheduledFor = (await this.store.describe(tenantId))?.deletionScheduledFor ?? null;
    if (deletionScheduledFor) await this.store.restore(tenantId);
    await ignoreMissing(() => this.store.disable(tenantId, versionId));
    if (deletionScheduledFor) await this.store.scheduleDeletion(tenantId, remainingWindowDays(deletionScheduledFor));
    return 'disabled';
  }

  /** Idempotent: a deletion already scheduled keeps its date. Returns the date. */
  async scheduleDeletion(tenantId: string, recoveryWindowDays: number): Promise<Date | null> {
    await ignoreMissing(() => this.store.scheduleDeletion(tenantId, recoveryWindowDays));
    return (await this.store.describe(tenantId))?.deletionScheduledFor ?? null;
  }

  /** A reinstall: cancel the deletion an uninstall scheduled (intake's new submission may have already). */
  async restore(tenantId: string): Promise<void> {
    const description = await this.store.describe(tenantId);
    if (description?.deletionScheduledFor) await this.store.restore(tenantId);
  }

  private async deletionScheduled(tenantId: string): Promise<boolean> {
    return Boolean((await this.store.describe(tenantId))?.deletionScheduledFor);
  }

  async currentVersionId(tenantId: string): Promise<string | null> {
    const description = await this.store.describe(tenantId);
    return description?.versions.find((v) => v.stages.includes('AWSCURRENT'))?.versionId ?? null;
  }
}

/** Days left of a recovery window, within what Secrets Manager accepts (7–30). */
function remainingWindowDays(deletionScheduledFor: Date): number {
  const days = Math.ceil((deletionScheduledFor.getTime() - Date.now()) / 86_400_000);
  return Math.min(30, Math.max(7, days));
}

async function ignoreMissing(step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (!(error instanceof SecretStoreError) || error.code !== 'not_found') throw error;
  }
}
