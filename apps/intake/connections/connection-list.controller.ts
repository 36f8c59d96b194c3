import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { ApiQueryShape, shapeRef } from '../http/api-shapes';
import { parseQuery } from '../http/request-query';
import { CONNECTION_LIST, CONNECTION_LIST_FIELD_CODES, CONNECTION_LIST_QUERY } from './connection-list.schema';
import { ConnectionsService } from './connections.service';

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
  @ApiQueryShape(CONNECTION_LIST_QUERY)
  @ApiOkResponse({ schema: shapeRef(CONNECTION_LIST) })
  @ApiRefusals('invalid_query', 'invalid_cursor', 'unauthenticated', 'forbidden')
  async page(@Query() raw: unknown): Promise<z.infer<typeof CONNECTION_LIST>> {
    const query = parseQuery(CONNECTION_LIST_QUERY, raw, CONNECTION_LIST_FIELD_CODES);
    return this.connections.page({ statuses: query.status ?? null, after: query.cursor ?? null, limit: query.limit });
  }
}
