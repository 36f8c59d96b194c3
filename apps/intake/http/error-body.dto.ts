import { ApiProperty } from '@nestjs/swagger';

export class ProblemDto {
  @ApiProperty({ example: 'invalid_key', description: 'Stable code to branch on.' })
  code!: string;
  @ApiProperty({ example: 'Pleo did not accept this API key.', description: 'What failed, for a person.' })
  message!: string;
  @ApiProperty({ example: 'Copy the key again from the Pleo installation screen and paste it here.', description: 'What to do next.' })
  action!: string;
}

export class ErrorBodyDto {
  @ApiProperty({ type: ProblemDto })
  error!: ProblemDto;
}
