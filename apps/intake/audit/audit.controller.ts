import { Controller, Get, Inject, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { AuditLogDto } from './audit.dto';
import { AuditLogView, AuditService, parseCursor, parseLimit, parseSince } from './audit.service';

@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/tenants/:tenantId/audit')
@UseGuards(CallerGuard)
export class AuditController {
  constructor(@Inject(AuditService) private readonly audit: AuditService) {}

  @Get()
  @AllowedCallers('service')
  @ApiQuery({ name: 'since', required: false, description: 'ISO 8601 date-time: entries at or after it.' })
  @ApiQuery({ name: 'limit', required: false, description: 'Entries per page, 1–1000, default 200.' })
  @ApiQuery({ name: 'cursor', required: false, description: 'The nextCursor of the previous page: the page of older entries after it.' })
  @ApiOkResponse({ type: AuditLogDto })
  @ApiRefusals('invalid_tenant_id', 'invalid_since', 'invalid_request', 'invalid_cursor', 'unauthenticated', 'forbidden')
  async read(@Param('tenantId') tenantId: string, @Query('since') since: unknown, @Query('limit') limit: unknown, @Query('cursor') cursor: unknown): Promise<AuditLogView> {
    return this.audit.read(tenantId, { since: parseSince(since), limit: parseLimit(limit), cursor: parseCursor(cursor) });
  }
}
