import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { callerOf } from '../auth/caller';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { correlationOf } from '../http/correlation';
import { parseBody } from '../http/request-body';
import { AlertDeliveriesService, AlertDeliveryView } from './alert-deliveries.service';

class AlertDeliveryDto {
  @ApiProperty({ format: 'uuid', description: 'The alert event id, also the webhook-id header of every attempt.' }) id!: string;
  @ApiProperty({ example: 'alert.reconnection_required' }) type!: string;
  @ApiProperty({ nullable: true, type: String, example: 'acme-42' }) tenantId!: string | null;
  @ApiProperty({ enum: ['delivered', 'failed', 'redelivering'], example: 'failed', description: "The last attempt's result, or redelivering after a redeliver request." }) status!: string;
  @ApiProperty({ example: 8 }) attempts!: number;
  @ApiProperty({ format: 'date-time' }) firstAttemptAt!: string;
  @ApiProperty({ format: 'date-time' }) lastAttemptAt!: string;
  @ApiProperty({ nullable: true, type: Number, example: 503 }) lastResponseStatus!: number | null;
  @ApiProperty({ nullable: true, type: String, example: 'HTTP 503' }) lastError!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) redeliveryRequestedAt!: string | null;
}

class AlertDeliveryListDto {
  @ApiProperty({ type: [AlertDeliveryDto] }) deliveries!: AlertDeliveryDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}

const NO_FIELDS = z.strictObject({});

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
  @ApiQuery({ name: 'status', required: false, enum: ['delivered', 'failed', 'redelivering'] })
  @ApiQuery({ name: 'tenantId', required: false })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page.' })
  @ApiQuery({ name: 'limit', required: false, description: '1–200, default 50.' })
  @ApiOkResponse({ type: AlertDeliveryListDto })
  @ApiRefusals('invalid_query', 'invalid_cursor')
  async list(@Query('status') status: unknown, @Query('tenantId') tenantId: unknown, @Query('cursor') cursor: unknown, @Query('limit') limit: unknown) {
    return this.deliveries.list(this.deliveries.parseQuery({ status, tenantId, cursor, limit }));
  }

  @Post(':id/redeliver')
  @HttpCode(202)
  @AllowedCallers('service')
  @ApiOperation({
    summary: 'Send an alert to the webhook again',
    description: 'The monitor sends it again with the same webhook-id and a fresh attempt budget. Possible while the alert event is kept (24 hours).',
  })
  @ApiAcceptedResponse({ type: AlertDeliveryDto })
  @ApiRefusals('alert_not_found', 'alert_no_longer_available')
  async redeliver(@Param('id') id: string, @Body() body: unknown, @Req() req: Request): Promise<AlertDeliveryView> {
    parseBody(NO_FIELDS, body);
    return this.deliveries.redeliver(id, callerOf(req), correlationOf(req).correlationId);
  }
}
