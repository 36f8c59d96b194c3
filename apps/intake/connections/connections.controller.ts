import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Req, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { NO_FIELDS, shapeRef } from '../http/api-shapes';
import { correlationOf } from '../http/correlation';
import { parseBody } from '../http/request-body';
import { CONNECTION, UNINSTALL } from './connection.schema';
import { ConnectionsService } from './connections.service';

@ApiTags('connection')
@ApiBearerAuth()
@ApiRefusals('unauthenticated', 'install_session_expired', 'forbidden', 'invalid_tenant_id')
@Controller('v1/tenants/:tenantId/pleo/connection')
@UseGuards(CallerGuard)
export class ConnectionsController {
  constructor(@Inject(ConnectionsService) private readonly connections: ConnectionsService) {}

  @Get()
  @AllowedCallers('service', 'install-session')
  @ApiOkResponse({ schema: shapeRef(CONNECTION) })
  async view(@Param('tenantId') tenantId: string): Promise<z.infer<typeof CONNECTION>> {
    return this.connections.view(tenantId);
  }

  @Delete()
  @HttpCode(202)
  @AllowedCallers('service')
  @ApiAcceptedResponse({ schema: shapeRef(UNINSTALL), description: 'Every key of the tenant is revoked; clean-up follows.' })
  async uninstall(@Param('tenantId') tenantId: string, @Body() body: unknown, @Req() req: Request): Promise<z.infer<typeof UNINSTALL>> {
    parseBody(NO_FIELDS, body);
    return this.connections.uninstall(tenantId, callerOf(req), correlationOf(req).correlationId);
  }
}
