import { reopenOutboxRows, Sweep } from '@keyward/messaging';
import { ROTATION } from './rotation-identity';

/**
 * Rotation's sweep: a `key.validated` (activation not done, or half done) or `key.rejected` that
 * was published longer ago than the threshold and that rotation has neither handled (no inbox row)
 * nor scheduled for retry. The same event is published again; rotation's inbox, tenant lock and
 * state checks make it finish the activation or change nothing.
 */
export const unappliedVerdictsSweep: Sweep = {
  kind: 'verdict_unapplied',
  async run(tx, limits) {
    const stuck = await tx.query<{ id: string }[]>(
      `SELECT o.id::text AS id FROM outbox o
       WHERE o.event_type IN ('key.validated', 'key.rejected')
         AND o.published_at IS NOT NULL AND o.published_at < now() - make_interval(secs => $1)
         AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.consumer = $2 AND i.event_id = o.id)
         AND NOT EXISTS (SELECT 1 FROM scheduled_retries r WHERE r.subscriber = $2 AND r.event_id = o.id)
       ORDER BY o.seq LIMIT $3`,
      [limits.stuckAfterSeconds, ROTATION.consumer, limits.batch],
    );
    const ids = stuck.map((r) => r.id);
    const reopened = await reopenOutboxRows(tx, ids, limits.maxRedrives);
    return { redriven: reopened, gaveUp: ids.filter((id) => !reopened.includes(id)) };
  },
};
