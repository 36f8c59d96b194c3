import { Body, Controller, Get, Header, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { Refusal, TENANT_ID_PATTERN } from '@keyward/contracts';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { correlationOf } from '../http/correlation';
import { parseBody } from '../http/request-body';
import { InstallSessionDto, InstallSessionInfoDto, InstallSessionRequest } from './install-session.dto';
import { InstallSessionInfo, InstallSessionsService, MintedInstallSession } from './install-sessions.service';

const MINT_REQUEST = z.strictObject({ tenantId: z.string(), returnUrl: z.string().min(1).max(2048).optional() });

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
  @ApiBody({ type: InstallSessionRequest })
  @ApiCreatedResponse({ type: InstallSessionDto })
  @ApiRefusals('invalid_tenant_id', 'invalid_request', 'unknown_fields', 'malformed_json', 'return_url_not_allowed', 'unauthenticated', 'forbidden')
  async mint(@Body() body: unknown, @Req() req: Request): Promise<MintedInstallSession> {
    const { tenantId, returnUrl } = parseBody(MINT_REQUEST, body);
    if (!TENANT_ID_PATTERN.test(tenantId)) throw new Refusal('invalid_tenant_id');
    return this.installSessions.mint(tenantId, returnUrl ?? null, callerOf(req), correlationOf(req).correlationId);
  }

  @Get('current')
  @AllowedCallers('install-session')
  @ApiOperation({
    summary: 'The install session presented (for the connect page)',
    description: 'Which tenant it is for, until when, and where to return. 409 install_session_used once its key was accepted.',
  })
  @ApiOkResponse({ type: InstallSessionInfoDto })
  @ApiRefusals('install_session_expired', 'install_session_used')
  async current(@Req() req: Request): Promise<InstallSessionInfo> {
    const caller = callerOf(req);
    if (caller.kind !== 'install-session') throw new Refusal('forbidden');
    return this.installSessions.describe(caller);
  }
}
