import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Put, Req, Res, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiBody, ApiHeader, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { shapeRef } from '../http/api-shapes';
import { correlationOf } from '../http/correlation';
import { preferredWaitSeconds } from './prefer-wait';
import { KEY_SUBMISSION, SUBMISSION } from './submission.schema';
import { SubmissionsService } from './submissions.service';

@ApiTags('submissions')
@ApiBearerAuth()
@ApiRefusals('unauthenticated', 'install_session_expired', 'forbidden', 'invalid_tenant_id')
@Controller('v1/tenants/:tenantId/pleo')
@UseGuards(CallerGuard)
export class SubmissionsController {
  constructor(@Inject(SubmissionsService) private readonly submissions: SubmissionsService) {}

  @Put('key')
  @HttpCode(202)
  @AllowedCallers('service', 'install-session')
  @ApiBody({ schema: shapeRef(KEY_SUBMISSION) })
  @ApiHeader({ name: 'Prefer', required: false, description: '`wait=N` (N ≤ 30): wait up to N seconds for the outcome.' })
  @ApiAcceptedResponse({ schema: shapeRef(SUBMISSION), description: 'Stored and queued for validation (status pending_validation).' })
  @ApiOkResponse({ schema: shapeRef(SUBMISSION), description: 'The final state: the outcome came within the Prefer wait, or the key is already active.' })
  @ApiRefusals(
    'key_empty',
    'key_has_auth_scheme',
    'key_inner_whitespace',
    'key_control_characters',
    'key_not_ascii',
    'key_too_short',
    'key_too_long',
    'invalid_request',
    'unknown_fields',
    'malformed_json',
    'install_session_used',
    'key_previously_compromised',
    'rate_limited',
    'secret_store_unavailable',
  )
  async submit(
    @Param('tenantId') tenantId: string,
    @Body() body: unknown,
    @Headers('prefer') prefer: string | undefined,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<z.infer<typeof SUBMISSION>> {
    const wait = preferredWaitSeconds(prefer);
    const result = await this.submissions.submit({ tenantId, body, caller: callerOf(req), correlationId: correlationOf(req).correlationId, waits: wait > 0 });
    res.setHeader('Location', `/v1/tenants/${tenantId}/pleo/submissions/${result.view.submissionId}`);
    if (result.kind === 'unchanged') {
      res.status(200);
      return result.view;
    }
    if (wait === 0) return result.view;
    res.setHeader('Preference-Applied', `wait=${wait}`);
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const { view, final } = await this.submissions.awaitOutcome(tenantId, result.view.submissionId, wait, gone.signal, result);
    res.status(final ? 200 : 202);
    return view;
  }

  @Get('submissions/:submissionId')
  @AllowedCallers('service', 'install-session')
  @ApiOkResponse({ schema: shapeRef(SUBMISSION) })
  @ApiRefusals('submission_not_found')
  async status(@Param('tenantId') tenantId: string, @Param('submissionId') submissionId: string): Promise<z.infer<typeof SUBMISSION>> {
    return this.submissions.status(tenantId, submissionId);
  }
}
