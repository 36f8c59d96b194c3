import { Refusal } from '@keyward/contracts';
import { ALERT_DELIVERY_QUERY, ALERT_DELIVERY_QUERY_FIELD_CODES } from '../alert-deliveries/alert-delivery.schema';
import { AUDIT_QUERY, AUDIT_QUERY_FIELD_CODES } from '../audit/audit.schema';
import { CONNECTION_LIST_QUERY, CONNECTION_LIST_FIELD_CODES } from '../connections/connection-list.schema';
import { encodeCursor } from '../connections/connection-list';
import { INSTALL_SESSION_REQUEST, INSTALL_SESSION_REQUEST_FIELD_CODES } from '../install-sessions/install-session.schema';
import { parseBody } from './request-body';
import { parseQuery } from './request-query';

function refusalOf(check: () => unknown): string {
  try {
    check();
  } catch (error) {
    if (error instanceof Refusal) return error.code;
    throw error;
  }
  return 'accepted';
}

describe('requests checked against their schemas answer the code of the first bad field', () => {
  it.each<[string, unknown, string]>([
    ['a tenant id and a return URL', { tenantId: 'acme-42', returnUrl: 'https://app.example.com/' }, 'accepted'],
    ['no body', undefined, 'invalid_request'],
    ['no tenant id', {}, 'invalid_request'],
    ['a malformed tenant id', { tenantId: 'a/b' }, 'invalid_tenant_id'],
    ['an unknown field beside a malformed tenant id', { tenantId: 'a/b', ttl: 99 }, 'unknown_fields'],
    ['an empty return URL', { tenantId: 'acme-42', returnUrl: '' }, 'invalid_request'],
    ['a body that is not an object', ['acme-42'], 'invalid_request'],
  ])('install session request with %s: %s', (_, body, code) => {
    expect(refusalOf(() => parseBody(INSTALL_SESSION_REQUEST, body, INSTALL_SESSION_REQUEST_FIELD_CODES))).toBe(code);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['nothing', {}, 'accepted'],
    ['all three', { since: '2026-11-02T09:30:00+01:00', limit: '1000', cursor: 's42', other: 'ignored' }, 'accepted'],
    ['a date without a zone', { since: '2026-11-02T09:30:00' }, 'invalid_since'],
    ['two dates', { since: ['2026-11-02T09:30:00Z', '2026-11-03T09:30:00Z'] }, 'invalid_since'],
    ['a bad date and a bad cursor', { since: 'yesterday', cursor: 'x' }, 'invalid_since'],
    ['a limit over 1000', { limit: '1001' }, 'invalid_request'],
    ['a limit of 0', { limit: '0' }, 'invalid_request'],
    ['a cursor without its s', { cursor: '42' }, 'invalid_cursor'],
    ['a cursor past the largest seq', { cursor: 's2147483648' }, 'invalid_cursor'],
  ])('audit query with %s: %s', (_, query, code) => {
    expect(refusalOf(() => parseQuery(AUDIT_QUERY, query, AUDIT_QUERY_FIELD_CODES))).toBe(code);
  });

  it('audit query: gives the page size 200 when none is asked for, and the cursor as a seq', () => {
    expect(parseQuery(AUDIT_QUERY, { cursor: 's42' }, AUDIT_QUERY_FIELD_CODES)).toEqual({ limit: 200, cursor: 42 });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['two states and a cursor', { status: 'degraded, reconnect_required', cursor: encodeCursor('acme-42'), limit: '200' }, 'accepted'],
    ['an unknown state', { status: 'degraded,broken' }, 'invalid_query'],
    ['only commas', { status: ',,' }, 'invalid_query'],
    ['a cursor that is not base64url', { cursor: 'a+b' }, 'invalid_cursor'],
    ['a cursor that is not a tenant id', { cursor: encodeCursor('a/b') }, 'invalid_cursor'],
    ['a limit over 200', { limit: '201' }, 'invalid_query'],
  ])('connection list query with %s: %s', (_, query, code) => {
    expect(refusalOf(() => parseQuery(CONNECTION_LIST_QUERY, query, CONNECTION_LIST_FIELD_CODES))).toBe(code);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a status, a tenant and a cursor', { status: 'failed', tenantId: 'acme-42', cursor: '17' }, 'accepted'],
    ['an unknown status', { status: 'lost' }, 'invalid_query'],
    ['a tenant id over 64 characters', { tenantId: 'a'.repeat(65) }, 'invalid_query'],
    ['a cursor that is not a number', { cursor: 's17' }, 'invalid_cursor'],
    ['a bad status and a bad cursor', { status: 'lost', cursor: 'x' }, 'invalid_query'],
  ])('alert delivery query with %s: %s', (_, query, code) => {
    expect(refusalOf(() => parseQuery(ALERT_DELIVERY_QUERY, query, ALERT_DELIVERY_QUERY_FIELD_CODES))).toBe(code);
  });
});
