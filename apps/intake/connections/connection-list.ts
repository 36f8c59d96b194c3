import { z } from 'zod';
import { CONNECTION_LIST_ITEM } from './connection-list.schema';
import { ConnectionView } from './connection-status';

/** The cursor is the last tenant id of the previous page, base64url: opaque to callers, checked by CONNECTION_LIST_QUERY. */
export function encodeCursor(tenantId: string): string {
  return Buffer.from(tenantId, 'utf8').toString('base64url');
}

/** One row of the list, from the same view GET …/pleo/connection answers. */
export function listItem(view: ConnectionView, newestSubmittedAt: string | null): z.infer<typeof CONNECTION_LIST_ITEM> {
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
