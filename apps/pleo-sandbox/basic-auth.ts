export interface BasicCredential {
  username: string;
  password: string;
}

export type AuthScheme = 'basic' | 'bearer' | 'other';

export function authScheme(header: string | undefined): AuthScheme | null {
  if (!header) return null;
  const scheme = header.trim().split(/\s+/, 1)[0].toLowerCase();
  return scheme === 'basic' ? 'basic' : scheme === 'bearer' ? 'bearer' : 'other';
}

/** The user name and password of an `Authorization: Basic …` header; undefined for anything else. */
export function readBasicCredential(header: string | undefined): BasicCredential | undefined {
  if (authScheme(header) !== 'basic') return undefined;
  const encoded = header!.trim().slice('basic'.length).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The last four characters of whatever credential came, the only part the sandbox keeps. */
export function credentialLast4(header: string | undefined): string | null {
  if (!header) return null;
  const basic = readBasicCredential(header);
  const value = basic ? basic.username : header.trim().split(/\s+/).slice(1).join(' ');
  return value ? value.slice(-4) : null;
}
