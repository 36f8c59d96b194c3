import { Column, Entity, PrimaryColumn } from 'typeorm';

export type HealthState = 'healthy' | 'degraded' | 'reconnect_required';

/** owner: monitor. Applies only while `credentialId` is the tenant's active credential. */
@Entity('connection_health')
export class ConnectionHealthEntity {
  @PrimaryColumn('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'credential_id' }) credentialId!: string;
  @Column('text') state!: HealthState;
  @Column('text', { nullable: true }) reason!: string | null;
  @Column('text', { name: 'missing_scopes', array: true, nullable: true }) missingScopes!: string[] | null;
  @Column('timestamptz') since!: Date;
  @Column('int', { name: 'auth_failures' }) authFailures!: number;
  @Column('timestamptz', { name: 'last_auth_failure_at', nullable: true }) lastAuthFailureAt!: Date | null;
  @Column('uuid', { name: 'incident_id', nullable: true }) incidentId!: string | null;
  @Column('uuid', { name: 'alerted_incident_id', nullable: true }) alertedIncidentId!: string | null;
  @Column('timestamptz', { name: 'revalidate_requested_at', nullable: true }) revalidateRequestedAt!: Date | null;
  @Column('timestamptz', { name: 'next_probe_at', nullable: true }) nextProbeAt!: Date | null;
  @Column('timestamptz', { name: 'last_probe_at', nullable: true }) lastProbeAt!: Date | null;
  @Column('timestamptz', { name: 'last_validated_at', nullable: true }) lastValidatedAt!: Date | null;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
  /** The window the record statement counted last (ADR 0059): kept while every failure in it stays in the window. */
  @Column('uuid', { name: 'window_credential_id', nullable: true }) windowCredentialId!: string | null;
  @Column('timestamptz', { name: 'window_start_at', nullable: true }) windowStartAt!: Date | null;
  @Column('int', { name: 'window_failures', nullable: true }) windowFailures!: number | null;
  @Column('int', { name: 'window_forbidden', nullable: true }) windowForbidden!: number | null;
  @Column('timestamptz', { name: 'window_oldest_at', nullable: true }) windowOldestAt!: Date | null;
  @Column('timestamptz', { name: 'window_newest_at', nullable: true }) windowNewestAt!: Date | null;
}
