import { ConfigError, loadConfig } from '@keyward/config';
import { createDataSource, DatabaseUnreachableError, describeDatabaseUrl } from '@keyward/persistence';
import { MasterKeyring, rotateMasterKey, SecretStoreError } from '@keyward/secrets';

/**
 * `npm run secrets:rotate-master-key`: set the NEW key as KEYWARD_MASTER_KEY and the OLD one(s)
 * in KEYWARD_MASTER_KEYRING, run this, then remove the old key from the keyring once it reports
 * nothing left under it.
 */
async function main(): Promise<void> {
  const config = loadConfig('tool');
  if (!config.secrets.masterKey) throw new ConfigError(['KEYWARD_MASTER_KEY (the new master key) is required to rotate']);
  const keyring = new MasterKeyring(config.secrets.masterKey, config.secrets.keyring);
  const dataSource = createDataSource({ url: config.database.url, poolSize: 2, applicationName: 'keyward-rotate-master-key' });
  try {
    await dataSource.initialize();
  } catch (error) {
    throw new DatabaseUnreachableError(describeDatabaseUrl(config.database.url), error);
  }
  try {
    const result = await rotateMasterKey(dataSource, keyring);
    const left = Object.entries(result.remainingByMasterKey).filter(([id]) => id !== keyring.current.id);
    process.stdout.write(`Re-wrapped ${result.rewrapped} data key(s) under master key ${keyring.current.id}.\n`);
    if (left.length > 0) {
      process.stdout.write(`Still under other keys: ${left.map(([id, n]) => `${id}=${n}`).join(', ')}. Keep those keys in KEYWARD_MASTER_KEYRING.\n`);
      process.exitCode = 2;
    } else {
      process.stdout.write('Every version is under the current master key; old keys may be removed from KEYWARD_MASTER_KEYRING.\n');
    }
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  const known = error instanceof ConfigError || error instanceof DatabaseUnreachableError || error instanceof SecretStoreError;
  process.stderr.write(`keyward secrets:rotate-master-key: ${known ? (error as Error).message : String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
