import { Body, Controller, HttpCode, Inject, Param, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { CompromiseDto } from '../connections/connection.dto';
import { correlationOf } from '../http/correlation';
import { ErrorBodyDto } from '../http/error-body.dto';
import { parseBody } from '../http/request-body';
import { CompromiseService } from './compromise.service';

const NO_FIELDS = z.strictObject({});

@ApiTags('connection')
@ApiBearerAuth()
@Controller('v1/tenants/:tenantId/pleo/compromise')
@UseGuards(CallerGuard)
export class CompromiseController {
  constructor(@Inject(CompromiseService) private readonly compromise: CompromiseService) {}

  @Post()
  @HttpCode(200)
  @AllowedCallers('service')
  @ApiOkResponse({ type: CompromiseDto, description: 'The active key is revoked (committed before this answer).' })
  @ApiResponse({ status: 401, type: ErrorBodyDto })
  @ApiResponse({ status: 403, type: ErrorBodyDto })
  @ApiResponse({ status: 409, type: ErrorBodyDto, description: 'The tenant has no active key.' })
  async report(@Param('tenantId') tenantId: string, @Body() body: unknown, @Req() req: Request): Promise<{ status: 'disabled' }> {
    parseBody(NO_FIELDS, body);
    const result = await this.compromise.report(tenantId, callerOf(req), correlationOf(req).correlationId);
    return { status: result.status };
  }
}
