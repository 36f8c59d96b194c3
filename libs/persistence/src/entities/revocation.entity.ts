import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** owner: intake. Checked by every read of key material for use. */
@Entity('revocations')
export class RevocationEntity {
  @PrimaryColumn('uuid', { name: 'credential_id' }) credentialId!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') reason!: 'compromised' | 'uninstalled';
  @Column('text', { name: 'reported_by' }) reportedBy!: string;
  @Column('text', { name: 'correlation_id' }) correlationId!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}
