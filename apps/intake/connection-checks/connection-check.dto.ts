import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ProblemDto } from '../http/error-body.dto';

export class ConnectionCheckDto {
  @ApiProperty({ format: 'uuid', description: 'The id of this check (GET …/connection/checks/{checkId}).' }) checkId!: string;
  @ApiProperty({ enum: ['pending', 'completed'], example: 'completed' }) status!: string;
  @ApiProperty({ format: 'date-time' }) requestedAt!: string;
  @ApiPropertyOptional({
    enum: ['valid', 'invalid', 'insufficient_scopes', 'unreachable'],
    example: 'valid',
    description: 'What Pleo said about the active key. `unreachable` is no verdict: the key is left as it was and checked again later.',
  })
  outcome?: string;
  @ApiPropertyOptional({ format: 'date-time' }) checkedAt?: string;
  @ApiPropertyOptional({ type: [String], example: ['users:read'] }) missingScopes?: string[];
  @ApiPropertyOptional({ type: ProblemDto, nullable: true, description: 'What the outcome means for the customer; null when the key is fine.' })
  error?: ProblemDto | null;
}
