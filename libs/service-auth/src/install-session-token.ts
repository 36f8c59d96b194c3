import { createHash, randomBytes } from 'node:crypto';

/** 32 random bytes, base64url: what the browser install step presents as a bearer token. */
export function newInstallSessionToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Only this hash is stored; the token itself is shown once, to the backend that minted it. */
export function installSessionTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
