import { TENANT_ID_PATTERN } from '@keyward/contracts';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class InstallSessionRequest {
  @ApiProperty({ pattern: TENANT_ID_PATTERN.source, description: 'The tenant the session may submit a key for.', example: 'acme-42' })
  tenantId!: string;
  @ApiPropertyOptional({
    description: 'Where the connect page offers a "Continue" link after connecting. Must start with one of KEYWARD_CONNECT_RETURN_URLS (else 400 return_url_not_allowed).',
    example: 'https://app.example.com/settings/pleo',
  })
  returnUrl?: string;
}

export class InstallSessionDto {
  @ApiProperty({ description: 'Bearer token for the browser install step. Shown once; only its hash is stored.', example: 'kM3vX0o1b8u1J0bq3wqk0Y7fZ0v7N2c3p9Qd6zY1a2E' })
  token!: string;
  @ApiProperty({ example: 'acme-42' }) tenantId!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiProperty({
    description:
      'The hosted connect page for this session: {KEYWARD_PUBLIC_URL}/connect#session=<token>. The token is in the fragment, which browsers never send to a server. Send the customer there.',
    example: 'https://keyward.example.com/connect#session=kM3vX0o1b8u1J0bq3wqk0Y7fZ0v7N2c3p9Qd6zY1a2E',
  })
  connectUrl!: string;
  @ApiProperty({ nullable: true, type: String, example: 'https://app.example.com/settings/pleo' }) returnUrl!: string | null;
}

export class InstallSessionInfoDto {
  @ApiProperty({ example: 'acme-42' }) tenantId!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiProperty({ nullable: true, type: String, example: 'https://app.example.com/settings/pleo' }) returnUrl!: string | null;
}
