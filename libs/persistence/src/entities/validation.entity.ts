import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * owner: validator. Its verdicts, one row per `key.validated`, `key.rejected` or `key.revalidated`
 * it published, written in the transaction that stages the event. Consumers act on this row,
 * found by the event's id, never on the event's own data (ADR 0015).
 */
@Entity('validations')
export class ValidationEntity {
  @PrimaryColumn('uuid', { name: 'event_id' }) eventId!: string;
  @Column('text', { name: 'event_type' }) eventType!: 'key.validated' | 'key.rejected' | 'key.revalidated';
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'credential_id' }) credentialId!: string;
  @Column('uuid', { name: 'submission_id', nullable: true }) submissionId!: string | null;
  /** `validated` / `rejected`, or the revalidation outcome. */
  @Column('text') outcome!: string;
  @Column('text', { name: 'company_id', nullable: true }) companyId!: string | null;
  @Column('text', { name: 'subject_type', nullable: true }) subjectType!: 'company' | 'organization' | null;
  @Column('text', { array: true }) scopes!: string[];
  @Column('text', { name: 'missing_scopes', array: true, nullable: true }) missingScopes!: string[] | null;
  @Column('text', { nullable: true }) reason!: string | null;
  @Column('text', { nullable: true }) message!: string | null;
  @Column('timestamptz', { name: 'decided_at' }) decidedAt!: Date;
}
