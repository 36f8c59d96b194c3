import { Body, Controller, HttpCode, Inject, Param, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { shapeRef } from '../http/api-shapes';
import { correlationOf } from '../http/correlation';
import { parseBody } from '../http/request-body';
import { keyView } from '../submissions/submission-status';
import { COMPROMISE, COMPROMISE_REPORT } from './compromise.schema';
import { CompromiseService } from './compromise.service';

@ApiTags('connection')
@ApiBearerAuth()
@Controller('v1/tenants/:tenantId/pleo/compromise')
@UseGuards(CallerGuard)
export class CompromiseController {
  constructor(@Inject(CompromiseService) private readonly compromise: CompromiseService) {}

  @Post()
  @HttpCode(200)
  @AllowedCallers('service')
  @ApiBody({ schema: shapeRef(COMPROMISE_REPORT), required: false })
  @ApiOkResponse({ schema: shapeRef(COMPROMISE), description: 'The named (or current) key is revoked, committed before this answer; the answer says which.' })
  @ApiRefusals('invalid_tenant_id', 'invalid_request', 'unknown_fields', 'malformed_json', 'unauthenticated', 'install_session_expired', 'forbidden', 'credential_not_found', 'no_active_key')
  async report(@Param('tenantId') tenantId: string, @Body() body: unknown, @Req() req: Request): Promise<z.infer<typeof COMPROMISE>> {
    const { credentialId } = parseBody(COMPROMISE_REPORT, body);
    const result = await this.compromise.report(tenantId, callerOf(req), correlationOf(req).correlationId, credentialId);
    return { status: result.status, credentialId: result.credentialId, key: keyView(result.last4) };
  }
}
