import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** owner: monitor */
@Entity('auth_failures')
export class AuthFailureEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id!: string;
  @Column('uuid', { name: 'event_id' }) eventId!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'credential_id', nullable: true }) credentialId!: string | null;
  @Column('smallint') status!: number;
  @Column('text') source!: string;
  @Column('text', { nullable: true }) endpoint!: string | null;
  @Column('boolean', { name: 'counts_against_active' }) countsAgainstActive!: boolean;
  @Column('timestamptz', { name: 'observed_at' }) observedAt!: Date;
  @CreateDateColumn({ name: 'recorded_at', type: 'timestamptz' }) recordedAt!: Date;
}
