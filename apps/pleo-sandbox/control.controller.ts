import { Body, Controller, Delete, Get, HttpCode, Inject, NotFoundException, Param, ParseUUIDPipe, Post, Put, Query, UnprocessableEntityException } from '@nestjs/common';
import { z } from 'zod';
import { RecordedRequest, SandboxFault, SandboxKey, SandboxState } from './sandbox-state';

const scopeList = z.union([z.array(z.string().regex(/^[A-Za-z0-9:._-]{1,100}$/)).max(200), z.string().max(5_000)]).transform((v) => (Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean)));

const issueKeyBody = z.strictObject({
  companyId: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,64}$/)
    .optional(),
  scopes: scopeList.optional(),
  subject: z.enum(['company', 'organization']).optional(),
  applicationName: z.string().min(1).max(200).optional(),
});

const scopesBody = z.strictObject({ scopes: scopeList });

const rateLimitBody = z.strictObject({ perMinute: z.number().int().min(0).max(1_000_000) });

const faultBody = z.strictObject({
  status: z.union([z.literal(429), z.literal(500), z.literal(503)]).optional(),
  delayMs: z.number().int().min(0).max(120_000).optional(),
  count: z.number().int().min(1).max(1_000_000).optional(),
  durationMs: z
    .number()
    .int()
    .min(1)
    .max(24 * 3_600_000)
    .optional(),
  retryAfterSeconds: z.number().int().min(0).max(3_600).optional(),
});

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    throw new UnprocessableEntityException({
      error: { code: 'invalid_request', message: result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') },
    });
  }
  return result.data;
}

/**
 * The sandbox's control API (never part of Pleo): issue, revoke and re-scope keys, inject
 * faults, and read what callers sent. Credentials in the request log are last4 only.
 */
@Controller('_sandbox')
export class ControlController {
  constructor(@Inject(SandboxState) private readonly state: SandboxState) {}

  @Post('keys')
  @HttpCode(201)
  issueKey(@Body() body: unknown): { id: string; apiKey: string; companyId: string; subject: string; subjectURN: string; scopes: string[] } {
    const input = parse(issueKeyBody, body);
    const key = this.state.issueKey(input);
    return { id: key.id, apiKey: key.apiKey, companyId: key.subjectId, subject: key.subject, subjectURN: urn(key), scopes: key.scopes };
  }

  @Get('keys/:id')
  describeKey(@Param('id', ParseUUIDPipe) id: string): ReturnType<typeof describe> {
    return describe(this.found(this.state.key(id)));
  }

  @Post('keys/:id/revoke')
  @HttpCode(200)
  revoke(@Param('id', ParseUUIDPipe) id: string): ReturnType<typeof describe> {
    return describe(this.found(this.state.revoke(id)));
  }

  @Put('keys/:id/scopes')
  setScopes(@Param('id', ParseUUIDPipe) id: string, @Body() body: unknown): ReturnType<typeof describe> {
    const { scopes } = parse(scopesBody, body);
    return describe(this.found(this.state.setScopes(id, scopes)));
  }

  @Post('faults')
  @HttpCode(201)
  injectFault(@Body() body: unknown): { fault: ReturnType<typeof describeFault> } {
    return { fault: describeFault(this.state.setFault(parse(faultBody, body))) };
  }

  @Get('faults')
  fault(): { fault: ReturnType<typeof describeFault> | null } {
    const fault = this.state.currentFault();
    return { fault: fault ? describeFault(fault) : null };
  }

  @Delete('faults')
  @HttpCode(204)
  clearFaults(): void {
    this.state.clearFault();
  }

  /** Pleo's per-credential limit (sliding minute; 0 = none); changing it forgets past calls. */
  @Put('rate-limit')
  setRateLimit(@Body() body: unknown): { perMinute: number } {
    return { perMinute: this.state.setRateLimit(parse(rateLimitBody, body).perMinute) };
  }

  @Get('rate-limit')
  rateLimit(): { perMinute: number } {
    return { perMinute: this.state.rateLimitPerMinute };
  }

  @Get('requests')
  requests(@Query('limit') limit?: string, @Query('after') after?: string): { requests: RecordedRequest[] } {
    const n = limit === undefined ? 200 : Number(limit);
    const from = after === undefined ? undefined : Number(after);
    return { requests: this.state.recentRequests(Number.isInteger(n) && n > 0 ? n : 200, Number.isInteger(from) && from! >= 0 ? from : undefined) };
  }

  @Delete('requests')
  @HttpCode(204)
  clearRequests(): void {
    this.state.clearRequests();
  }

  private found(key: SandboxKey | undefined): SandboxKey {
    if (!key) throw new NotFoundException({ error: { code: 'unknown_key', message: 'The sandbox issued no key with this id.' } });
    return key;
  }
}

function urn(key: SandboxKey): string {
  return `urn:pleo:${key.subject}:${key.subjectId}`;
}

/** A key as the control API shows it after creation: never the value again, last4 only. */
function describe(key: SandboxKey) {
  return {
    id: key.id,
    last4: key.apiKey.slice(-4),
    companyId: key.subjectId,
    subject: key.subject,
    subjectURN: urn(key),
    scopes: key.scopes,
    revoked: key.revokedAt !== null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}

function describeFault(fault: SandboxFault) {
  return {
    status: fault.status ?? null,
    delayMs: fault.delayMs,
    remaining: fault.remaining ?? null,
    until: fault.until?.toISOString() ?? null,
    retryAfterSeconds: fault.retryAfterSeconds,
  };
}
