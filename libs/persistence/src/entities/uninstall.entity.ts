import { Column, Entity, PrimaryColumn } from 'typeorm';

/** owner: intake. One row per `connection.uninstalled` it published, so rotation can confirm it. */
@Entity('uninstalls')
export class UninstallEntity {
  @PrimaryColumn('uuid', { name: 'event_id' }) eventId!: string;
  @Column('text', { name: 'tenant_id' }) tenantId!: string;
  @Column('text', { name: 'requested_by' }) requestedBy!: string;
  @Column('text', { name: 'correlation_id' }) correlationId!: string;
  @Column('timestamptz', { name: 'requested_at' }) requestedAt!: Date;
}
