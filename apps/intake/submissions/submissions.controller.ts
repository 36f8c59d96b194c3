import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Put, Req, Res, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiBody, ApiHeader, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { correlationOf } from '../http/correlation';
import { ErrorBodyDto } from '../http/error-body.dto';
import { preferredWaitSeconds } from './prefer-wait';
import { KeySubmissionBody, SubmissionDto } from './submission.dto';
import { SubmissionView } from './submission-status';
import { SubmissionsService } from './submissions.service';

@ApiTags('submissions')
@ApiBearerAuth()
@ApiResponse({ status: 401, type: ErrorBodyDto, description: 'Missing, unknown or expired token.' })
@ApiResponse({ status: 403, type: ErrorBodyDto, description: 'The token may not act for this tenant.' })
@Controller('v1/tenants/:tenantId/pleo')
@UseGuards(CallerGuard)
export class SubmissionsController {
  constructor(@Inject(SubmissionsService) private readonly submissions: SubmissionsService) {}

  @Put('key')
  @HttpCode(202)
  @AllowedCallers('service', 'install-session')
  @ApiBody({ type: KeySubmissionBody })
  @ApiHeader({ name: 'Prefer', required: false, description: '`wait=N` (N ≤ 30): wait up to N seconds for the outcome.' })
  @ApiAcceptedResponse({ type: SubmissionDto, description: 'Stored and queued for validation (status pending_validation).' })
  @ApiOkResponse({ type: SubmissionDto, description: 'The final state: the outcome came within the Prefer wait, or the key is already active.' })
  @ApiResponse({ status: 400, type: ErrorBodyDto, description: 'The key is not well formed, or the request is not.' })
  @ApiResponse({ status: 422, type: ErrorBodyDto, description: 'The key was reported as compromised before.' })
  @ApiResponse({ status: 429, type: ErrorBodyDto, description: 'Too many submissions; see Retry-After.' })
  async submit(
    @Param('tenantId') tenantId: string,
    @Body() body: unknown,
    @Headers('prefer') prefer: string | undefined,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<SubmissionView> {
    const result = await this.submissions.submit({ tenantId, body, caller: callerOf(req), correlationId: correlationOf(req).correlationId });
    res.setHeader('Location', `/v1/tenants/${tenantId}/pleo/submissions/${result.view.submissionId}`);
    if (result.kind === 'unchanged') {
      res.status(200);
      return result.view;
    }
    const wait = preferredWaitSeconds(prefer);
    if (wait === 0) return result.view;
    res.setHeader('Preference-Applied', `wait=${wait}`);
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const { view, final } = await this.submissions.awaitOutcome(tenantId, result.view.submissionId, wait, gone.signal);
    res.status(final ? 200 : 202);
    return view;
  }

  @Get('submissions/:submissionId')
  @AllowedCallers('service', 'install-session')
  @ApiOkResponse({ type: SubmissionDto })
  @ApiResponse({ status: 404, type: ErrorBodyDto, description: 'No such submission for this tenant.' })
  async status(@Param('tenantId') tenantId: string, @Param('submissionId') submissionId: string): Promise<SubmissionView> {
    return this.submissions.status(tenantId, submissionId);
  }
}
