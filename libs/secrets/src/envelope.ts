import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MasterKey } from '@keyward/config';
import { ApiKey } from '@keyward/key-material';
import { SecretStoreError } from './secret-store';

/**
 * Envelope encryption for the local store: every version gets a fresh AES-256-GCM data key; the
 * data key is wrapped (AES-256-GCM) by a master key. Both layers bind the tenant, the version
 * (= credential id) and the secret name as additional authenticated data, so a row copied to
 * another tenant or version, or altered by one byte, fails to open instead of yielding a key.
 */
export interface SealContext {
  tenantId: string;
  versionId: string;
  secretName: string;
}

/** An encrypted record, as stored. Deliberately not convertible to an ApiKey without `openSealed`. */
export interface SealedValue {
  ciphertext: Buffer;
  iv: Buffer;
  authTag: Buffer;
  /** iv(12) ‖ tag(16) ‖ encrypted data key(32), under the master key `masterKeyId`. */
  wrappedDataKey: Buffer;
  masterKeyId: string;
  /** HMAC-SHA256 of the value under its own data key: compares values without decrypting, unusable without the master key. */
  valueDigest: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** The current master key wraps new data keys; retired ones only unwrap rows not yet re-wrapped. */
export class MasterKeyring {
  private readonly byId = new Map<string, MasterKey>();

  constructor(
    readonly current: MasterKey,
    retired: MasterKey[] = [],
  ) {
    for (const key of [current, ...retired]) {
      if (key.key.length !== KEY_BYTES) throw new SecretStoreError('crypto_failure', `Master key ${key.id} is not 32 bytes`);
      const known = this.byId.get(key.id);
      // One id, two keys: rows wrapped under the dropped one would never open again, nor be re-wrapped.
      if (known && !known.key.equals(key.key)) {
        throw new SecretStoreError('crypto_failure', `Master key id ${key.id} names two different keys; give each key its own id`);
      }
      if (!known) this.byId.set(key.id, key);
    }
  }

  get ids(): string[] {
    return [...this.byId.keys()];
  }

  get(id: string): MasterKey {
    const key = this.byId.get(id);
    if (!key) {
      throw new SecretStoreError('crypto_failure', `Master key ${id} is not in the keyring: add it to KEYWARD_MASTER_KEYRING until its rows are re-wrapped`);
    }
    return key;
  }
}

function valueAad(ctx: SealContext): Buffer {
  return Buffer.from(`keyward/api-key/v1\0${ctx.tenantId}\0${ctx.versionId}\0${ctx.secretName}`, 'utf8');
}

function wrapAad(ctx: SealContext, masterKeyId: string): Buffer {
  return Buffer.from(`keyward/data-key/v1\0${masterKeyId}\0${ctx.tenantId}\0${ctx.versionId}\0${ctx.secretName}`, 'utf8');
}

function digest(dataKey: Buffer, plaintext: Buffer): string {
  return createHmac('sha256', dataKey).update('keyward/value-digest/v1\0').update(plaintext).digest('hex');
}

function wrapDataKey(master: MasterKey, ctx: SealContext, dataKey: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', master.key, iv);
  cipher.setAAD(wrapAad(ctx, master.id));
  const encrypted = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), encrypted]);
}

function unwrapDataKey(keyring: MasterKeyring, ctx: SealContext, sealed: Pick<SealedValue, 'wrappedDataKey' | 'masterKeyId'>): Buffer {
  const master = keyring.get(sealed.masterKeyId);
  const wrapped = sealed.wrappedDataKey;
  if (wrapped.length !== IV_BYTES + TAG_BYTES + KEY_BYTES) throw cryptoFailure(ctx, 'the wrapped data key has the wrong length');
  try {
    const decipher = createDecipheriv('aes-256-gcm', master.key, wrapped.subarray(0, IV_BYTES));
    decipher.setAAD(wrapAad(ctx, master.id));
    decipher.setAuthTag(wrapped.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(wrapped.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw cryptoFailure(ctx, 'the data key does not authenticate (wrong master key, or the row was moved or altered)');
  }
}

function cryptoFailure(ctx: SealContext, why: string): SecretStoreError {
  // No cause: the crypto library's error carries nothing useful and nothing we want to chain.
  return new SecretStoreError('crypto_failure', `Sealed version ${ctx.versionId} of tenant ${ctx.tenantId} cannot be opened: ${why}`);
}

export function sealValue(keyring: MasterKeyring, ctx: SealContext, key: ApiKey): SealedValue {
  const dataKey = randomBytes(KEY_BYTES);
  const plaintext = Buffer.from(key.reveal(), 'utf8');
  try {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(valueAad(ctx));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      ciphertext,
      iv,
      authTag: cipher.getAuthTag(),
      wrappedDataKey: wrapDataKey(keyring.current, ctx, dataKey),
      masterKeyId: keyring.current.id,
      valueDigest: digest(dataKey, plaintext),
    };
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

export function openSealed(keyring: MasterKeyring, ctx: SealContext, sealed: SealedValue): ApiKey {
  const dataKey = unwrapDataKey(keyring, ctx, sealed);
  let plaintext: Buffer | undefined;
  try {
    if (sealed.iv.length !== IV_BYTES || sealed.authTag.length !== TAG_BYTES) throw cryptoFailure(ctx, 'the nonce or tag has the wrong length');
    const decipher = createDecipheriv('aes-256-gcm', dataKey, sealed.iv);
    decipher.setAAD(valueAad(ctx));
    decipher.setAuthTag(sealed.authTag);
    try {
      plaintext = Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
    } catch {
      throw cryptoFailure(ctx, 'the ciphertext does not authenticate (the row was moved or altered)');
    }
    return ApiKey.fromTrusted(plaintext.toString('utf8'));
  } finally {
    dataKey.fill(0);
    plaintext?.fill(0);
  }
}

/** Whether `key` is the sealed value, without decrypting it (idempotent writes compare this way). */
export function sealedValueMatches(keyring: MasterKeyring, ctx: SealContext, sealed: SealedValue, key: ApiKey): boolean {
  const dataKey = unwrapDataKey(keyring, ctx, sealed);
  const plaintext = Buffer.from(key.reveal(), 'utf8');
  try {
    const expected = Buffer.from(sealed.valueDigest, 'hex');
    const actual = Buffer.from(digest(dataKey, plaintext), 'hex');
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

/** Master-key rotation: the data key moves under the current master key; the ciphertext is untouched. */
export function rewrapDataKey(keyring: MasterKeyring, ctx: SealContext, sealed: Pick<SealedValue, 'wrappedDataKey' | 'masterKeyId'>): { wrappedDataKey: Buffer; masterKeyId: string } {
  const dataKey = unwrapDataKey(keyring, ctx, sealed);
  try {
    return { wrappedDataKey: wrapDataKey(keyring.current, ctx, dataKey), masterKeyId: keyring.current.id };
  } finally {
    dataKey.fill(0);
  }
}
