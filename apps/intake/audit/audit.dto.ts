import { ApiProperty } from '@nestjs/swagger';

export class AuditEntryDto {
  @ApiProperty() seq!: number;
  @ApiProperty({ format: 'date-time' }) occurredAt!: string;
  @ApiProperty({ example: 'token:billing' }) actor!: string;
  @ApiProperty({ example: 'key.submitted' }) action!: string;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) credentialId!: string | null;
  @ApiProperty({ nullable: true, type: String }) last4!: string | null;
  @ApiProperty({ nullable: true, type: String }) correlationId!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) details!: Record<string, unknown>;
}

export class AuditChainDto {
  @ApiProperty({ description: 'Whether the hash chain of the whole log verifies.' }) ok!: boolean;
  @ApiProperty() entries!: number;
  @ApiProperty({ required: false }) brokenAtSeq?: number;
}

export class AuditLogDto {
  @ApiProperty() tenantId!: string;
  @ApiProperty({ type: [AuditEntryDto], description: 'Newest first.' }) entries!: AuditEntryDto[];
  @ApiProperty({ type: AuditChainDto }) chain!: AuditChainDto;
}
