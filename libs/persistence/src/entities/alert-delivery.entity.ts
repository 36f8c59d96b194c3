import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** owner: monitor. One row per webhook delivery attempt. */
@Entity('alert_deliveries')
export class AlertDeliveryEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id!: string;
  @Column('uuid', { name: 'alert_event_id' }) alertEventId!: string;
  @Column('text', { name: 'tenant_id', nullable: true }) tenantId!: string | null;
  @Column('text') kind!: string;
  @Column('int') attempt!: number;
  @Column('text') status!: 'delivered' | 'failed';
  @Column('int', { name: 'response_status', nullable: true }) responseStatus!: number | null;
  @Column('text', { nullable: true }) error!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}
