import { TENANT_ID_PATTERN } from '@keyward/contracts';
import { ApiProperty } from '@nestjs/swagger';

export class InstallSessionRequest {
  @ApiProperty({ pattern: TENANT_ID_PATTERN.source, description: 'The tenant the session may submit a key for.' })
  tenantId!: string;
}

export class InstallSessionDto {
  @ApiProperty({ description: 'Bearer token for the browser install step. Shown once; only its hash is stored.' })
  token!: string;
  @ApiProperty() tenantId!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
}
