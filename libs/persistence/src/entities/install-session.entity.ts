import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** owner: intake. The token itself is never stored, only its SHA-256. */
@Entity('install_sessions')
export class InstallSessionEntity {
  @PrimaryColumn('char', { name: 'token_hash', length: 64 }) tokenHash!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('text', { name: 'created_by' }) createdBy!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
  /** Where the connect page offers to send the customer back; checked against KEYWARD_CONNECT_RETURN_URLS. */
  @Column('text', { name: 'return_url', nullable: true }) returnUrl!: string | null;
  /** The newest submission made with this session; once its key is accepted, the session is used up. */
  @Column('uuid', { name: 'submission_id', nullable: true }) submissionId!: string | null;
}
