import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { ApiQueryShape, NO_FIELDS, shapeRef } from '../http/api-shapes';
import { correlationOf } from '../http/correlation';
import { parseBody } from '../http/request-body';
import { parseQuery } from '../http/request-query';
import { AlertDeliveriesService } from './alert-deliveries.service';
import { ALERT_DELIVERY, ALERT_DELIVERY_LIST, ALERT_DELIVERY_QUERY, ALERT_DELIVERY_QUERY_FIELD_CODES } from './alert-delivery.schema';

@ApiTags('alerts')
@ApiBearerAuth()
@ApiRefusals('unauthenticated', 'forbidden')
@Controller('v1/alerts/deliveries')
@UseGuards(CallerGuard)
export class AlertDeliveriesController {
  constructor(@Inject(AlertDeliveriesService) private readonly deliveries: AlertDeliveriesService) {}

  @Get()
  @AllowedCallers('service')
  @ApiOperation({ summary: 'Alert webhook deliveries, newest first', description: 'E.g. `?status=failed` for alerts the receiver has not accepted.' })
  @ApiQueryShape(ALERT_DELIVERY_QUERY)
  @ApiOkResponse({ schema: shapeRef(ALERT_DELIVERY_LIST) })
  @ApiRefusals('invalid_query', 'invalid_cursor')
  async list(@Query() raw: unknown): Promise<z.infer<typeof ALERT_DELIVERY_LIST>> {
    const query = parseQuery(ALERT_DELIVERY_QUERY, raw, ALERT_DELIVERY_QUERY_FIELD_CODES);
    return this.deliveries.list({ status: query.status ?? null, tenantId: query.tenantId ?? null, before: query.cursor ?? null, limit: query.limit });
  }

  @Post(':id/redeliver')
  @HttpCode(202)
  @AllowedCallers('service')
  @ApiOperation({
    summary: 'Send an alert to the webhook again',
    description: 'The monitor sends it again with the same webhook-id and a fresh attempt budget. Possible while the alert event is kept (24 hours).',
  })
  @ApiAcceptedResponse({ schema: shapeRef(ALERT_DELIVERY) })
  @ApiRefusals('alert_not_found', 'alert_no_longer_available')
  async redeliver(@Param('id') id: string, @Body() body: unknown, @Req() req: Request): Promise<z.infer<typeof ALERT_DELIVERY>> {
    parseBody(NO_FIELDS, body);
    return this.deliveries.redeliver(id, callerOf(req), correlationOf(req).correlationId);
  }
}
