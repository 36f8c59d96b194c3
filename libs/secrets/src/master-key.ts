import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { KeywardConfig, MasterKey } from '@keyward/config';
import type { KeywardLogger } from '@keyward/observability';
import { MasterKeyring } from './envelope';
import { SecretStoreError } from './secret-store';

/** Git-ignored (`.keyward/` is in .gitignore). Development and test only. */
const DEV_MASTER_KEY_FILE = '.keyward/master.key';

/**
 * The keyring the local store seals with. KEYWARD_MASTER_KEY is required outside development and
 * test; there, a missing key is generated once into `.keyward/master.key` so a fresh checkout
 * starts, and the log says so (a generated key is not a production secret).
 */
export function resolveMasterKeyring(config: KeywardConfig, logger?: KeywardLogger, file = resolve(process.cwd(), DEV_MASTER_KEY_FILE)): MasterKeyring {
  const configured = config.secrets.masterKey;
  if (configured) return new MasterKeyring(configured, config.secrets.keyring);
  if (config.nodeEnv === 'production') {
    throw new SecretStoreError('crypto_failure', 'KEYWARD_MASTER_KEY is required when NODE_ENV=production with the local secret backend (32 bytes, base64)');
  }
  return new MasterKeyring(loadOrCreateDevMasterKey(file, logger), config.secrets.keyring);
}

function loadOrCreateDevMasterKey(file: string, logger?: KeywardLogger): MasterKey {
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    const colon = text.indexOf(':');
    const key = Buffer.from(colon > 0 ? text.slice(colon + 1) : text, 'base64');
    if (key.length !== 32) throw new SecretStoreError('crypto_failure', `${file} does not hold a 32-byte base64 master key; delete it to generate a new one`);
    return { id: colon > 0 ? text.slice(0, colon) : idFor(key), key };
  }
  const key = randomBytes(32);
  const id = idFor(key);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // 'wx': two services starting at once must not overwrite each other's key.
  try {
    writeFileSync(file, `${id}:${key.toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    chmodSync(file, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateDevMasterKey(file, logger);
    throw error;
  }
  logger?.warn('Generated a development master key for the local secret store; set KEYWARD_MASTER_KEY outside development', {
    file,
    masterKeyId: id,
  });
  return { id, key };
}

function idFor(key: Buffer): string {
  return `mk-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}
