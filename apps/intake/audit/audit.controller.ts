import { Controller, Get, Inject, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AllowedCallers } from '../auth/allowed-callers.decorator';
import { CallerGuard } from '../auth/caller.guard';
import { ApiRefusals } from '../http/api-refusals';
import { ApiQueryShape, shapeRef } from '../http/api-shapes';
import { parseQuery } from '../http/request-query';
import { AUDIT_LOG, AUDIT_QUERY, AUDIT_QUERY_FIELD_CODES } from './audit.schema';
import { AuditService } from './audit.service';

@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/tenants/:tenantId/audit')
@UseGuards(CallerGuard)
export class AuditController {
  constructor(@Inject(AuditService) private readonly audit: AuditService) {}

  @Get()
  @AllowedCallers('service')
  @ApiQueryShape(AUDIT_QUERY)
  @ApiOkResponse({ schema: shapeRef(AUDIT_LOG) })
  @ApiRefusals('invalid_tenant_id', 'invalid_since', 'invalid_request', 'invalid_cursor', 'unauthenticated', 'forbidden')
  async read(@Param('tenantId') tenantId: string, @Query() raw: unknown): Promise<z.infer<typeof AUDIT_LOG>> {
    return this.audit.read(tenantId, parseQuery(AUDIT_QUERY, raw, AUDIT_QUERY_FIELD_CODES));
  }
}
