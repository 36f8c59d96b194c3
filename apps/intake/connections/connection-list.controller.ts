import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { ProblemDto } from '../http/error-body.dto';
import { KeyViewDto } from '../submissions/submission.dto';
import { CONNECTION_STATUSES, ConnectionListItem, parseListQuery } from './connection-list';
import { ConnectionsService } from './connections.service';

class ConnectionListItemDto {
  @ApiProperty({ example: 'acme-42' }) tenantId!: string;
  @ApiProperty({ enum: CONNECTION_STATUSES, example: 'reconnect_required' }) status!: string;
  @ApiProperty({ nullable: true, type: String, example: '4f1c2a9e-7d1b-4c53-9a0e-2b8e5d6f7a10' }) companyId!: string | null;
  @ApiProperty({ type: KeyViewDto, nullable: true }) key!: KeyViewDto | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'Since when the connection is in this state.' }) since!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) lastValidatedAt!: string | null;
  @ApiProperty({ type: ProblemDto, nullable: true, description: 'What failed last and what the customer should do.' }) lastError!: ProblemDto | null;
}

class ConnectionListDto {
  @ApiProperty({ type: [ConnectionListItemDto] }) connections!: ConnectionListItemDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last page.' }) nextCursor!: string | null;
}

@ApiTags('connections')
@ApiBearerAuth()
@Controller('v1/connections')
@UseGuards(CallerGuard)
export class ConnectionListController {
  constructor(@Inject(ConnectionsService) private readonly connections: ConnectionsService) {}

  @Get()
  @AllowedCallers('service')
  @ApiOperation({
    summary: 'Tenants by connection state, for support dashboards',
    description: 'Who needs attention: e.g. `?status=degraded,reconnect_required`. Ordered by tenant id; follow nextCursor. Each row is what GET …/pleo/connection answers, in short.',
  })
  @ApiQuery({ name: 'status', required: false, description: 'Comma-separated states.', example: 'degraded,reconnect_required' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page.' })
  @ApiQuery({ name: 'limit', required: false, description: '1–200, default 50.' })
  @ApiOkResponse({ type: ConnectionListDto })
  @ApiRefusals('invalid_query', 'invalid_cursor', 'unauthenticated', 'forbidden')
  async page(@Query('status') status: unknown, @Query('cursor') cursor: unknown, @Query('limit') limit: unknown): Promise<{ connections: ConnectionListItem[]; nextCursor: string | null }> {
    return this.connections.page(parseListQuery({ status, cursor, limit }));
  }
}
