const BEARER = /^Bearer[ \t]+(\S{1,1024})[ \t]*$/i;

/** The token of an `Authorization: Bearer …` header; undefined for anything else. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const match = typeof header === 'string' ? BEARER.exec(header) : null;
  return match ? match[1] : undefined;
}
