import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

export type LifecycleStatus = 'not_connected' | 'active' | 'disabled' | 'uninstalled';

/**
 * owner: rotation. The lifecycle half of a tenant's connection status; the health half
 * (degraded, reconnect_required) is `connection_health`, owned by monitor.
 */
@Entity('connections')
export class ConnectionEntity {
  @PrimaryColumn('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') status!: LifecycleStatus;
  @Column('text', { name: 'company_id', nullable: true }) companyId!: string | null;
  @Column('text', { name: 'subject_type', nullable: true }) subjectType!: 'company' | 'organization' | null;
  @Column('text', { name: 'subject_id', nullable: true }) subjectId!: string | null;
  @Column('uuid', { name: 'active_credential_id', nullable: true }) activeCredentialId!: string | null;
  @Column('text', { name: 'error_code', nullable: true }) errorCode!: string | null;
  @Column('jsonb', { name: 'error_detail', nullable: true }) errorDetail!: Record<string, unknown> | null;
  @Column('timestamptz', { name: 'activated_at', nullable: true }) activatedAt!: Date | null;
  @Column('timestamptz', { name: 'last_validated_at', nullable: true }) lastValidatedAt!: Date | null;
  @Column('timestamptz', { name: 'status_since' }) statusSince!: Date;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
}
