import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ProblemDto } from '../http/error-body.dto';

export class KeySubmissionBody {
  @ApiProperty({
    description:
      'The Integrated API Key exactly as Pleo showed it during installation. Surrounding whitespace is ignored. ' + 'It is never returned by any call; answers show only its last four characters.',
    writeOnly: true,
    format: 'password',
    minLength: 1,
  })
  apiKey!: string;
}

export class KeyViewDto {
  @ApiProperty({ example: 'a1b2' }) last4!: string;
  @ApiProperty({ example: '••••••••a1b2' }) masked!: string;
}

export class SubmissionDto {
  @ApiProperty({ format: 'uuid' }) submissionId!: string;
  @ApiProperty({ format: 'uuid', description: 'The credential (and secret version) this submission created.' }) credentialId!: string;
  @ApiProperty({ enum: ['pending_validation', 'accepted', 'rejected', 'superseded'] }) status!: string;
  @ApiProperty({ type: KeyViewDto }) key!: KeyViewDto;
  @ApiProperty({ format: 'date-time' }) submittedAt!: string;
  @ApiPropertyOptional({ enum: ['invalid_key', 'company_mismatch', 'insufficient_scopes', 'unsupported_subject', 'malformed_key'], description: 'Why the key was rejected.' })
  reason?: string;
  @ApiPropertyOptional({ type: [String], description: 'Scopes the key lacks (insufficient_scopes).' }) missingScopes?: string[];
  @ApiPropertyOptional({ description: 'What failed, for a person (rejected).' }) message?: string;
  @ApiPropertyOptional({ description: 'What to do next (rejected).' }) action?: string;
  @ApiPropertyOptional({ type: ProblemDto, description: 'Why validation has not finished yet (e.g. Pleo unreachable).' }) lastError?: ProblemDto;
}
