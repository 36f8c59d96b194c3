import { Problem, Refusal, TENANT_ID_PATTERN } from '@keyward/contracts';
import { KeyView } from '../submissions/submission-status';
import { ConnectionStatus, ConnectionView } from './connection-status';

export const CONNECTION_STATUSES: ConnectionStatus[] = ['not_connected', 'pending_validation', 'active', 'degraded', 'reconnect_required', 'disabled', 'uninstalled'];

export interface ConnectionListItem {
  tenantId: string;
  status: ConnectionStatus;
  companyId: string | null;
  key: KeyView | null;
  /** Since when the connection is in this state. */
  since: string | null;
  lastValidatedAt: string | null;
  /** What failed last and what to do, for every state that needs attention. */
  lastError: Problem | null;
}

export interface ConnectionListQuery {
  statuses: ConnectionStatus[] | null;
  after: string | null;
  limit: number;
}

/** `status=degraded,reconnect_required&cursor=…&limit=…`, checked at the edge. */
export function parseListQuery(query: { status?: unknown; cursor?: unknown; limit?: unknown }): ConnectionListQuery {
  let statuses: ConnectionStatus[] | null = null;
  if (query.status !== undefined) {
    if (typeof query.status !== 'string') throw new Refusal('invalid_query');
    const wanted = query.status
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (wanted.length === 0 || wanted.some((s) => !(CONNECTION_STATUSES as string[]).includes(s))) throw new Refusal('invalid_query');
    statuses = wanted as ConnectionStatus[];
  }
  return { statuses, after: parseCursor(query.cursor), limit: parsePageLimit(query.limit, 50, 200) };
}

export function parsePageLimit(value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Refusal('invalid_query');
  return n;
}

/** The cursor is the last tenant id of the previous page, base64url: opaque to callers, checked here. */
export function encodeCursor(tenantId: string): string {
  return Buffer.from(tenantId, 'utf8').toString('base64url');
}

function parseCursor(value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(value)) throw new Refusal('invalid_cursor');
  const tenantId = Buffer.from(value, 'base64url').toString('utf8');
  if (!TENANT_ID_PATTERN.test(tenantId)) throw new Refusal('invalid_cursor');
  return tenantId;
}

/** One row of the list, from the same view GET …/pleo/connection answers. */
export function listItem(view: ConnectionView, newestSubmittedAt: string | null): ConnectionListItem {
  return {
    tenantId: view.tenantId,
    status: view.status,
    companyId: view.companyId,
    key: view.key,
    since: view.health.since ?? (view.status === 'pending_validation' || view.status === 'not_connected' ? newestSubmittedAt : null),
    lastValidatedAt: view.lastValidatedAt,
    lastError: view.error,
  };
}
