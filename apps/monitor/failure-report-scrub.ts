import type { EventEnvelope } from '@keyward/contracts';

/**
 * What of an `auth.failed` report other backends send is kept in `auth_failures` (for 90 days):
 * free text that can carry a key by accident — a URL with `?api_key=`, credentials in its
 * userinfo, a source like "sync key=…". The endpoint keeps its path only (no query, fragment or
 * userinfo); the source keeps its first word, as a name.
 */
export interface FailureRecord {
  eventId: string;
  tenantId: string;
  /** The credential the report names, if it names one. */
  credentialId: string | null;
  status: number;
  source: string;
  endpoint: string | null;
  observedAt: string;
}

export function failureRecord(event: EventEnvelope<'auth.failed'>): FailureRecord {
  const { data } = event;
  return {
    eventId: event.id,
    tenantId: event.tenantId,
    credentialId: data.credentialId ?? null,
    status: data.status,
    source: scrubSource(data.source),
    endpoint: scrubEndpoint(data.endpoint),
    observedAt: data.observedAt,
  };
}

export function scrubEndpoint(endpoint: string | undefined): string | null {
  if (endpoint === undefined) return null;
  let rest = endpoint.trim().split(/[?#]/, 1)[0];
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(rest);
  if (scheme) {
    const afterScheme = rest.slice(scheme[0].length);
    const slash = afterScheme.indexOf('/');
    const authority = slash < 0 ? afterScheme : afterScheme.slice(0, slash);
    const host = authority.slice(authority.lastIndexOf('@') + 1);
    rest = `${scheme[0]}${host}${slash < 0 ? '' : afterScheme.slice(slash)}`;
  }
  // Path parameters like `;jsessionid=` are as unsafe as a query.
  rest = rest.split(';', 1)[0];
  return rest.length > 0 ? rest : null;
}

export function scrubSource(source: string): string {
  const name = source
    .trim()
    .split(/[\s=:?&#;,]/, 1)[0]
    .slice(0, 64);
  return name.length > 0 ? name : 'unnamed';
}
