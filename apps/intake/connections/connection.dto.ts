import { ApiProperty } from '@nestjs/swagger';
import { ProblemDto } from '../http/error-body.dto';
import { KeyViewDto } from '../submissions/submission.dto';

export class SubjectDto {
  @ApiProperty({ enum: ['company', 'organization'] }) type!: string;
  @ApiProperty({ nullable: true, type: String }) id!: string | null;
}

export class ConnectionHealthDto {
  @ApiProperty() authFailures!: number;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) lastAuthFailureAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) since!: string | null;
}

export class ConnectionErrorDto extends ProblemDto {
  @ApiProperty({ required: false, type: [String] }) missingScopes?: string[];
}

export class PendingSubmissionDto {
  @ApiProperty({ format: 'uuid' }) submissionId!: string;
  @ApiProperty({ format: 'uuid' }) credentialId!: string;
  @ApiProperty({ enum: ['pending_validation'] }) status!: string;
  @ApiProperty({ type: KeyViewDto }) key!: KeyViewDto;
  @ApiProperty({ format: 'date-time' }) submittedAt!: string;
  @ApiProperty({ type: ProblemDto, nullable: true }) lastError!: ProblemDto | null;
}

export class ConnectionDto {
  @ApiProperty() tenantId!: string;
  @ApiProperty({ enum: ['not_connected', 'pending_validation', 'active', 'degraded', 'reconnect_required', 'disabled', 'uninstalled'] }) status!: string;
  @ApiProperty({ nullable: true, type: String, description: 'The Pleo company the tenant is bound to.' }) companyId!: string | null;
  @ApiProperty({ type: SubjectDto, nullable: true }) subject!: SubjectDto | null;
  @ApiProperty({ type: [String] }) scopes!: string[];
  @ApiProperty({ type: KeyViewDto, nullable: true, description: 'The key in use, as last4 and masked only.' }) key!: KeyViewDto | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) activatedAt!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) lastValidatedAt!: string | null;
  @ApiProperty({ type: ConnectionHealthDto }) health!: ConnectionHealthDto;
  @ApiProperty({ type: ConnectionErrorDto, nullable: true, description: 'What failed and what to do, for every state that needs it.' }) error!: ConnectionErrorDto | null;
  @ApiProperty({ type: PendingSubmissionDto, nullable: true }) pendingSubmission!: PendingSubmissionDto | null;
}

export class UninstallDto {
  @ApiProperty() tenantId!: string;
  @ApiProperty({ enum: ['uninstalled'] }) status!: string;
  @ApiProperty({ type: [String], description: 'The keys this request revoked (the current one and every pending one); empty for a repeat.' })
  revokedCredentialIds!: string[];
}

export class CompromiseReportDto {
  @ApiProperty({ required: false, format: 'uuid', description: "The leaked key. Without it: the tenant's current key, or once uninstalled the last one in service." })
  credentialId?: string;
}

export class CompromiseDto {
  @ApiProperty({
    enum: ['disabled', 'revoked'],
    description: 'disabled: the key was the current one and the connection is disabled. revoked: it was not current (pending, replaced or uninstalled) and can never be used again.',
  })
  status!: string;
  @ApiProperty({ format: 'uuid', description: 'The key this report revoked.' }) credentialId!: string;
  @ApiProperty({ type: KeyViewDto }) key!: KeyViewDto;
}
