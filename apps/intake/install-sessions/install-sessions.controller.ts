import { Body, Controller, Header, HttpCode, Inject, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { TENANT_ID_PATTERN } from '@keyward/contracts';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { correlationOf } from '../http/correlation';
import { ErrorBodyDto } from '../http/error-body.dto';
import { IntakeError } from '../http/intake-error';
import { parseBody } from '../http/request-body';
import { InstallSessionDto, InstallSessionRequest } from './install-session.dto';
import { InstallSessionsService, MintedInstallSession } from './install-sessions.service';

const MINT_REQUEST = z.strictObject({ tenantId: z.string() });

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
  @ApiBody({ type: InstallSessionRequest })
  @ApiCreatedResponse({ type: InstallSessionDto })
  @ApiResponse({ status: 400, type: ErrorBodyDto })
  @ApiResponse({ status: 401, type: ErrorBodyDto })
  @ApiResponse({ status: 403, type: ErrorBodyDto })
  async mint(@Body() body: unknown, @Req() req: Request): Promise<MintedInstallSession> {
    const { tenantId } = parseBody(MINT_REQUEST, body);
    if (!TENANT_ID_PATTERN.test(tenantId)) throw new IntakeError(400, 'invalid_tenant_id');
    return this.installSessions.mint(tenantId, callerOf(req), correlationOf(req).correlationId);
  }
}
