import { DataSource } from 'typeorm';
import { MasterKeyring } from './envelope';
import { LocalSecretStore } from './local-secret-store';

export interface MasterKeyRotationResult {
  rewrapped: number;
  /** Versions per master key id after the run: everything should be under the current key. */
  remainingByMasterKey: Record<string, number>;
}

/**
 * `npm run secrets:rotate-master-key`: re-wraps every data key of the local store under the
 * current master key (KEYWARD_MASTER_KEY); the old key must be in KEYWARD_MASTER_KEYRING. The
 * ciphertexts of the API keys are not touched, so the run is cheap and safe to repeat.
 */
export async function rotateMasterKey(dataSource: DataSource, keyring: MasterKeyring, options: { batchSize?: number } = {}): Promise<MasterKeyRotationResult> {
  // Naming is irrelevant to re-wrapping: each row carries its own secret name and tenant.
  const store = new LocalSecretStore(dataSource, keyring, { namePrefix: 'keyward', envName: 'rotation' });
  return store.rewrapDataKeys(options);
}
