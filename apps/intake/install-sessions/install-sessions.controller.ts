import { Body, Controller, Get, Header, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { Refusal } from '@keyward/contracts';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { shapeRef } from '../http/api-shapes';
import { correlationOf } from '../http/correlation';
import { parseBody } from '../http/request-body';
import { INSTALL_SESSION, INSTALL_SESSION_INFO, INSTALL_SESSION_REQUEST, INSTALL_SESSION_REQUEST_FIELD_CODES } from './install-session.schema';
import { InstallSessionsService } from './install-sessions.service';

@ApiTags('install sessions')
@ApiBearerAuth()
@Controller('v1/install-sessions')
@UseGuards(CallerGuard)
export class InstallSessionsController {
  constructor(@Inject(InstallSessionsService) private readonly installSessions: InstallSessionsService) {}

  @Post()
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  @AllowedCallers('service')
  @ApiOperation({ summary: 'Start a browser install step for one tenant', description: 'Answers a short-lived token and the hosted connect page URL to send the customer to.' })
  @ApiBody({ schema: shapeRef(INSTALL_SESSION_REQUEST) })
  @ApiCreatedResponse({ schema: shapeRef(INSTALL_SESSION) })
  @ApiRefusals('invalid_tenant_id', 'invalid_request', 'unknown_fields', 'malformed_json', 'return_url_not_allowed', 'unauthenticated', 'forbidden')
  async mint(@Body() body: unknown, @Req() req: Request): Promise<z.infer<typeof INSTALL_SESSION>> {
    const { tenantId, returnUrl } = parseBody(INSTALL_SESSION_REQUEST, body, INSTALL_SESSION_REQUEST_FIELD_CODES);
    return this.installSessions.mint(tenantId, returnUrl ?? null, callerOf(req), correlationOf(req).correlationId);
  }

  @Get('current')
  @AllowedCallers('install-session')
  @ApiOperation({
    summary: 'The install session presented (for the connect page)',
    description: 'Which tenant it is for, until when, and where to return. 409 install_session_used once its key was accepted.',
  })
  @ApiOkResponse({ schema: shapeRef(INSTALL_SESSION_INFO) })
  @ApiRefusals('install_session_expired', 'install_session_used')
  async current(@Req() req: Request): Promise<z.infer<typeof INSTALL_SESSION_INFO>> {
    const caller = callerOf(req);
    if (caller.kind !== 'install-session') throw new Refusal('forbidden');
    return this.installSessions.describe(caller);
  }
}
