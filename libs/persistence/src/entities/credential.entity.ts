import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

export type CredentialStatus = 'active' | 'rejected' | 'invalidated';

/** owner: rotation. Metadata about a key keyward decided on; never the key. */
@Entity('credentials')
export class CredentialEntity {
  @PrimaryColumn('uuid') id!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'submission_id' }) submissionId!: string;
  @Column('text', { name: 'secret_version_id' }) secretVersionId!: string;
  @Column('varchar', { length: 4 }) last4!: string;
  @Column('char', { length: 64 }) fingerprint!: string;
  @Column('text') status!: CredentialStatus;
  @Column('text', { name: 'company_id', nullable: true }) companyId!: string | null;
  @Column('text', { name: 'subject_type', nullable: true }) subjectType!: string | null;
  @Column('text', { name: 'subject_id', nullable: true }) subjectId!: string | null;
  @Column('text', { array: true }) scopes!: string[];
  @Column('text', { name: 'rejection_reason', nullable: true }) rejectionReason!: string | null;
  @Column('jsonb', { name: 'rejection_detail', nullable: true }) rejectionDetail!: Record<string, unknown> | null;
  @Column('text', { name: 'invalidated_reason', nullable: true }) invalidatedReason!: 'replaced' | 'compromised' | 'uninstalled' | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'validated_at', nullable: true }) validatedAt!: Date | null;
  @Column('timestamptz', { name: 'activated_at', nullable: true }) activatedAt!: Date | null;
  @Column('timestamptz', { name: 'invalidated_at', nullable: true }) invalidatedAt!: Date | null;
}
