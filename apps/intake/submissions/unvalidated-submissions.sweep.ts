import { createEvent } from '@keyward/contracts';
import { Outbox, reopenOutboxRows, Sweep } from '@keyward/messaging';
import { INTAKE } from '../intake-identity';

interface StuckSubmission {
  submission_id: string;
  tenant_id: string;
  credential_id: string;
  secret_version_id: string;
  last4: string;
  replacing: boolean;
  correlation_id: string;
  event_id: string | null;
}

/**
 * Intake's sweep: the newest submission of a tenant still `pending_validation` with nothing moving
 * it — no verdict event, no retry scheduled, its `key.submitted` published (or gone) and no
 * validation attempt for longer than the threshold, not revoked, not parked for an operator.
 * Its `key.submitted` is published again (the same event when the outbox still has it, else an
 * equal one rebuilt from the submission row); the validator decides from the database again.
 */
export const unvalidatedSubmissionsSweep: Sweep = {
  kind: 'submission_unvalidated',
  async run(tx, limits) {
    const stuck = await tx.query<StuckSubmission[]>(
      `SELECT s.id::text AS submission_id, s.tenant_id, s.credential_id::text AS credential_id, s.secret_version_id, s.last4, s.replacing,
              s.correlation_id, o.id::text AS event_id
       FROM submissions s
       LEFT JOIN LATERAL (
         SELECT id, published_at FROM outbox
         WHERE event_type = 'key.submitted' AND payload->'data'->>'submissionId' = s.id::text ORDER BY seq DESC LIMIT 1) o ON true
       LEFT JOIN validation_attempts v ON v.credential_id = s.credential_id
       WHERE s.superseded_at IS NULL
         AND s.created_at < now() - make_interval(secs => $1)
         AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = s.credential_id)
         AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.credential_id = s.credential_id)
         AND v.parked_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.event_type IN ('key.validated', 'key.rejected') AND x.payload->'data'->>'submissionId' = s.id::text)
         AND NOT EXISTS (SELECT 1 FROM scheduled_retries r WHERE r.event_id = o.id)
         AND (o.id IS NULL OR o.published_at IS NOT NULL)
         AND greatest(s.created_at, v.last_attempt_at, o.published_at) < now() - make_interval(secs => $1)
       ORDER BY s.seq LIMIT $2`,
      [limits.submissionStuckAfterSeconds, limits.batch],
    );

    const known = stuck.filter((s) => s.event_id !== null).map((s) => s.event_id!);
    const reopened = await reopenOutboxRows(tx, known, limits.maxRedrives);
    // Past the outbox retention the original row is gone: an equal event, rebuilt from the row.
    const rebuilt = stuck
      .filter((s) => s.event_id === null)
      .map((s) =>
        createEvent(
          'key.submitted',
          { tenantId: s.tenant_id, correlationId: s.correlation_id, producer: INTAKE.producer },
          { submissionId: s.submission_id, credentialId: s.credential_id, secretVersionId: s.secret_version_id, last4: s.last4, replacing: s.replacing },
        ),
      );
    await Outbox.stage(tx, ...rebuilt);
    return { redriven: [...reopened, ...rebuilt.map((e) => e.id)], gaveUp: known.filter((id) => !reopened.includes(id)) };
  },
};
