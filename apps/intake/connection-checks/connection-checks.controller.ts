import { Controller, Get, Headers, HttpCode, Inject, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { shapeRef } from '../http/api-shapes';
import { correlationOf } from '../http/correlation';
import { preferredWaitSeconds } from '../submissions/prefer-wait';
import { CONNECTION_CHECK } from './connection-check.schema';
import { ConnectionChecksService } from './connection-checks.service';

@ApiTags('connection')
@ApiBearerAuth()
@ApiRefusals('unauthenticated', 'forbidden', 'invalid_tenant_id')
@Controller('v1/tenants/:tenantId/pleo/connection')
@UseGuards(CallerGuard)
export class ConnectionChecksController {
  constructor(@Inject(ConnectionChecksService) private readonly checks: ConnectionChecksService) {}

  @Post('check')
  @HttpCode(202)
  @AllowedCallers('service')
  @ApiOperation({
    summary: 'Check the active key with Pleo now',
    description:
      "Asks for a revalidation of the tenant's active key (key.revalidate, reason manual). With `Prefer: wait=N` (N ≤ 30) it answers the outcome when it comes in time. " +
      "The connection's state follows the outcome as after any probe. Rate limited per tenant (KEYWARD_CONNECTION_CHECKS_PER_TENANT_PER_HOUR).",
  })
  @ApiHeader({ name: 'Prefer', required: false, description: '`wait=N` (N ≤ 30): wait up to N seconds for the outcome.' })
  @ApiAcceptedResponse({ schema: shapeRef(CONNECTION_CHECK), description: 'Requested; see Location for its outcome.' })
  @ApiOkResponse({ schema: shapeRef(CONNECTION_CHECK), description: 'The outcome came within the Prefer wait.' })
  @ApiRefusals('connection_not_checkable', 'check_rate_limited')
  async check(
    @Param('tenantId') tenantId: string,
    @Headers('prefer') prefer: string | undefined,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<z.infer<typeof CONNECTION_CHECK>> {
    const wait = preferredWaitSeconds(prefer);
    const requested = await this.checks.request(tenantId, callerOf(req), correlationOf(req).correlationId, wait > 0);
    const { view } = requested;
    res.setHeader('Location', `/v1/tenants/${tenantId}/pleo/connection/checks/${view.checkId}`);
    if (wait === 0) return view;
    res.setHeader('Preference-Applied', `wait=${wait}`);
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const result = await this.checks.awaitOutcome(tenantId, view.checkId, wait, gone.signal, requested);
    res.status(result.final ? 200 : 202);
    return result.view;
  }

  @Get('checks/:checkId')
  @AllowedCallers('service')
  @ApiOperation({ summary: 'The outcome of a connection check' })
  @ApiOkResponse({ schema: shapeRef(CONNECTION_CHECK) })
  @ApiRefusals('check_not_found')
  async find(@Param('tenantId') tenantId: string, @Param('checkId') checkId: string): Promise<z.infer<typeof CONNECTION_CHECK>> {
    return this.checks.find(tenantId, checkId);
  }
}
