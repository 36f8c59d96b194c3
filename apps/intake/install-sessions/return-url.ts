/**
 * Where the connect page may send the customer back. A returnUrl must be an absolute http(s)
 * URL that starts with one of the configured prefixes (each ends in "/" or names a path, so a
 * host cannot be extended), carries no credentials, and is not longer than 2 KiB.
 */
export function isAllowedReturnUrl(value: string, prefixes: string[]): boolean {
  if (value.length > 2048) return false;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false;
  if (parsed.username || parsed.password) return false;
  // Compare the normalised form, so "https://app.example/../evil" cannot slip past a prefix.
  return prefixes.some((prefix) => parsed.href.startsWith(prefix));
}

/** `{publicUrl}/connect#session=<token>`: the fragment never reaches a server, a log or a Referer. */
export function connectUrl(publicUrl: string, token: string): string {
  return `${publicUrl}/connect#session=${encodeURIComponent(token)}`;
}
