import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** owner: intake */
@Entity('submissions')
export class SubmissionEntity {
  @PrimaryColumn('uuid') id!: string;
  @Column({ type: 'bigint', insert: false, update: false }) seq!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'credential_id' }) credentialId!: string;
  @Column('text', { name: 'secret_version_id' }) secretVersionId!: string;
  @Column('varchar', { length: 4 }) last4!: string;
  @Column('char', { length: 64 }) fingerprint!: string;
  @Column('boolean') replacing!: boolean;
  @Column('text', { name: 'submitted_by' }) submittedBy!: string;
  @Column('text', { name: 'correlation_id' }) correlationId!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'superseded_at', nullable: true }) supersededAt!: Date | null;
  @Column('uuid', { name: 'superseded_by', nullable: true }) supersededBy!: string | null;
}
