import { Column, Entity, PrimaryColumn } from 'typeorm';

/** owner: validator. Why a submission is still pending (Pleo unreachable), for status reads. */
@Entity('validation_attempts')
export class ValidationAttemptEntity {
  @PrimaryColumn('uuid', { name: 'credential_id' }) credentialId!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('int') attempts!: number;
  @Column('timestamptz', { name: 'first_failure_at', nullable: true }) firstFailureAt!: Date | null;
  @Column('timestamptz', { name: 'last_attempt_at' }) lastAttemptAt!: Date;
  @Column('text', { name: 'last_error_code', nullable: true }) lastErrorCode!: string | null;
  @Column('timestamptz', { name: 'parked_at', nullable: true }) parkedAt!: Date | null;
}
