import type { IncomingHttpHeaders } from 'node:http';

/** Hop-by-hop headers (RFC 9110 §7.6.1) and their older relatives: never forwarded either way. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * What the caller sent that must not reach Pleo: its own credentials (Authorization, cookies),
 * the gateway's host, an Expect handshake, and where the call came from inside the integration.
 */
const CALLER_ONLY = new Set(['authorization', 'cookie', 'host', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip']);

/** Pleo's challenge would invite the caller to send Pleo credentials; keyward holds those. */
const PLEO_ONLY = new Set(['www-authenticate']);

function namedInConnection(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Set<string> {
  const value = headers.connection;
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** The headers that go to Pleo: the caller's minus the above, plus the key as HTTP Basic. */
export function headersForPleo(incoming: IncomingHttpHeaders, authorization: string): Record<string, string | string[]> {
  const dropped = namedInConnection(incoming);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || CALLER_ONLY.has(name) || dropped.has(name)) continue;
    out[name] = value;
  }
  out.authorization = authorization;
  return out;
}

/** Pleo's answer headers as the caller gets them: minus hop-by-hop and WWW-Authenticate. */
export function headersForCaller(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const dropped = namedInConnection(upstream);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || PLEO_ONLY.has(lower) || dropped.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}
