import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Req, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { correlationOf } from '../http/correlation';
import { parseBody } from '../http/request-body';
import { ConnectionDto, UninstallDto } from './connection.dto';
import { ConnectionView } from './connection-status';
import { ConnectionsService, UninstallResult } from './connections.service';

const NO_FIELDS = z.strictObject({});

@ApiTags('connection')
@ApiBearerAuth()
@ApiRefusals('unauthenticated', 'install_session_expired', 'forbidden', 'invalid_tenant_id')
@Controller('v1/tenants/:tenantId/pleo/connection')
@UseGuards(CallerGuard)
export class ConnectionsController {
  constructor(@Inject(ConnectionsService) private readonly connections: ConnectionsService) {}

  @Get()
  @AllowedCallers('service', 'install-session')
  @ApiOkResponse({ type: ConnectionDto })
  async view(@Param('tenantId') tenantId: string): Promise<ConnectionView> {
    return this.connections.view(tenantId);
  }

  @Delete()
  @HttpCode(202)
  @AllowedCallers('service')
  @ApiAcceptedResponse({ type: UninstallDto, description: 'Every key of the tenant is revoked; clean-up follows.' })
  async uninstall(@Param('tenantId') tenantId: string, @Body() body: unknown, @Req() req: Request): Promise<UninstallResult> {
    parseBody(NO_FIELDS, body);
    return this.connections.uninstall(tenantId, callerOf(req), correlationOf(req).correlationId);
  }
}
