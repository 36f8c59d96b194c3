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
  @ApiProperty({ description: 'Whether what this read verified is intact: the entries appended since the previous read, and the entries of this page.' })
  ok!: boolean;
  @ApiProperty({ description: "Entries in the tenant's chain." }) entries!: number;
  @ApiProperty({ description: 'The chain is verified from its first entry through this seq.' }) verifiedThroughSeq!: number;
  @ApiProperty({ required: false }) brokenAtSeq?: number;
}

export class AuditLogDto {
  @ApiProperty() tenantId!: string;
  @ApiProperty({ type: [AuditEntryDto], description: 'One page, newest first.' }) entries!: AuditEntryDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as cursor for the next, older page; null on the last page.' }) nextCursor!: string | null;
  @ApiProperty({ type: AuditChainDto }) chain!: AuditChainDto;
}
