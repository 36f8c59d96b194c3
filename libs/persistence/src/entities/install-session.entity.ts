import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** owner: intake. The token itself is never stored, only its SHA-256. */
@Entity('install_sessions')
export class InstallSessionEntity {
  @PrimaryColumn('char', { name: 'token_hash', length: 64 }) tokenHash!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('text', { name: 'created_by' }) createdBy!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'expires_at' }) expiresAt!: Date;
}
