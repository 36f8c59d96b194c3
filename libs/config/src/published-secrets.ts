import { createHash } from 'node:crypto';

/**
 * Secret values that anyone can read in this repository (docker-compose.yml, examples, test
 * fixtures, development defaults). Production refuses each of them at start, by variable name,
 * whatever the variable's form (`id:base64` or plain base64, `name=token` or `name=sha256:<hex>`).
 * `published-secrets.spec.ts` scans the repository for secret assignments and fails when one is
 * missing here, so a new example value cannot slip into production unnoticed.
 */
export const PUBLISHED_SECRETS = {
  /** KEYWARD_SERVICE_TOKENS token values. */
  serviceTokens: ['dev-service-token', 'ops-service-token-0001', 'bench-service-token-000'],
  /** KEYWARD_FINGERPRINT_PEPPER, as written (base64) or as used raw by the development default. */
  fingerprintPeppers: ['a2V5d2FyZC1jb21wb3NlLWRldi1maW5nZXJwcmludC1wZXBwZXI=', 'keyward-development-fingerprint-pepper'],
  /** KEYWARD_MASTER_KEY / KEYWARD_MASTER_KEYRING key material, base64 (the id does not matter). */
  masterKeys: ['a2V5d2FyZC1jb21wb3NlLWRldi1tYXN0ZXIta2V5ISE='],
  /** KEYWARD_ALERT_WEBHOOK_SECRET. */
  webhookSecrets: [] as string[],
  /** Passwords in AMQP_URL / DATABASE_URL. */
  connectionPasswords: ['guest'],
} as const;

const sha256 = (value: Buffer | string) => createHash('sha256').update(value).digest('hex');

const published = {
  tokenHashes: new Set(PUBLISHED_SECRETS.serviceTokens.map((t) => sha256(t))),
  peppers: new Set(PUBLISHED_SECRETS.fingerprintPeppers.flatMap((p) => [sha256(Buffer.from(p, 'base64')), sha256(p)])),
  masterKeys: new Set(PUBLISHED_SECRETS.masterKeys.map((k) => sha256(Buffer.from(k, 'base64')))),
  webhookSecrets: new Set(PUBLISHED_SECRETS.webhookSecrets.map((s) => sha256(s))),
  passwords: new Set(PUBLISHED_SECRETS.connectionPasswords.map((s) => sha256(s))),
};

/** A service token's SHA-256 (what the configuration keeps) is one of a published token. */
export function isPublishedServiceToken(tokenSha256: Buffer): boolean {
  return published.tokenHashes.has(tokenSha256.toString('hex'));
}

export function isPublishedPepper(pepper: Buffer): boolean {
  return published.peppers.has(sha256(pepper));
}

export function isPublishedMasterKey(key: Buffer): boolean {
  return published.masterKeys.has(sha256(key));
}

export function isPublishedWebhookSecret(secret: string): boolean {
  return published.webhookSecrets.has(sha256(secret));
}

/** The password of a connection URL (amqp://user:password@…) is a published one. */
export function hasPublishedPassword(url: string): boolean {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password !== '' && published.passwords.has(sha256(password));
  } catch {
    return false;
  }
}
