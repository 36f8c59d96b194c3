import { TENANT_ID_PATTERN } from '@keyward/contracts';

/** `/v1/tenants/{tenantId}/pleo/api/{path…}` with its query string, as the caller sent it. */
const GATEWAY_ROUTE = /^\/v1\/tenants\/([^/?#]*)\/pleo\/api(\/[^?#]*)?(\?[^#]*)?$/;

export type GatewayTarget = { kind: 'pleo'; tenantId: string; path: string; query: string } | { kind: 'refused'; code: 'invalid_tenant_id' | 'invalid_pleo_path' } | { kind: 'not-gateway' };

/** Characters a path segment may carry unencoded (RFC 3986 pchar); everything else is percent-encoded. */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

function encodeSegment(segment: string): string {
  let out = '';
  for (const ch of segment) out += PCHAR.test(ch) ? ch : encodeURIComponent(ch);
  return out;
}

/**
 * Reads the raw request target. The Pleo path is decoded segment by segment and re-encoded, so
 * what reaches Pleo is one canonical form; a segment that is `.` or `..` (however encoded), holds
 * an encoded slash or backslash, or does not decode, is refused before anything else happens.
 * Empty segments (`//`) are dropped. The query string goes on exactly as sent.
 */
export function gatewayTarget(rawUrl: string): GatewayTarget {
  const match = GATEWAY_ROUTE.exec(rawUrl);
  if (!match) return { kind: 'not-gateway' };
  const [, rawTenant, rawPath = '', query = ''] = match;
  let tenantId: string;
  try {
    tenantId = decodeURIComponent(rawTenant);
  } catch {
    return { kind: 'refused', code: 'invalid_tenant_id' };
  }
  if (!TENANT_ID_PATTERN.test(tenantId)) return { kind: 'refused', code: 'invalid_tenant_id' };
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '') continue;
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return { kind: 'refused', code: 'invalid_pleo_path' };
    }
    if (segment === '.' || segment === '..' || /[/\\]|\p{Cc}/u.test(segment)) {
      return { kind: 'refused', code: 'invalid_pleo_path' };
    }
    segments.push(encodeSegment(segment));
  }
  if (segments.length === 0) return { kind: 'refused', code: 'invalid_pleo_path' };
  return { kind: 'pleo', tenantId, path: `/${segments.join('/')}`, query };
}

const ID_LIKE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+|(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{16,}|urn(?::|%3A).*)$/i;

/**
 * The endpoint as a template for events and metrics: ids (UUIDs, numbers, long tokens with
 * digits, URNs) become `{id}`, the query is never part of it. `/v1/export-jobs/9f…/file` →
 * `/v1/export-jobs/{id}/file`.
 */
export function endpointTemplate(path: string): string {
  const template = path
    .split('/')
    .map((segment) => (segment !== '' && ID_LIKE.test(segment) ? '{id}' : segment))
    .join('/');
  return template.length <= 300 ? template : `${template.slice(0, 297)}...`;
}
