import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { ApiQueryShape, shapeRef } from '../http/api-shapes';
import { parseQuery } from '../http/request-query';
import { encodeCursor, listItem } from './connection-list';
import { CONNECTION_LIST, CONNECTION_LIST_FIELD_CODES, CONNECTION_LIST_QUERY } from './connection-list.schema';
import { ConnectionListRepository } from './connection-list.repository';
import { ConnectionRepository } from './connection.repository';
import { connectionView } from './connection-status';

@ApiTags('connections')
@ApiBearerAuth()
@Controller('v1/connections')
@UseGuards(CallerGuard)
export class ConnectionListController {
  constructor(
    @Inject(ConnectionListRepository) private readonly list: ConnectionListRepository,
    @Inject(ConnectionRepository) private readonly connections: ConnectionRepository,
  ) {}

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
    const rows = await this.list.page(query.status ?? null, query.cursor ?? null, query.limit);
    const page = rows.slice(0, query.limit);
    const connections: z.infer<typeof CONNECTION_LIST>['connections'] = [];
    for (const row of page) {
      const snapshot = await this.connections.snapshot(row.tenantId);
      connections.push(listItem(connectionView(snapshot), snapshot.newest?.createdAt.toISOString() ?? null));
    }
    return { connections, nextCursor: rows.length > query.limit ? encodeCursor(page[page.length - 1].tenantId) : null };
  }
}
