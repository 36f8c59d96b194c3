import { Controller, Get, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { readBasicCredential } from './basic-auth';
import { SandboxKey, SandboxState } from './sandbox-state';

/**
 * Pleo's public API as far as keyward needs it, answered for the keys this sandbox issued:
 * `GET /v1/introspect` and two data endpoints that answer 200, 401 or 403 by the key's state and
 * scopes, so callers can observe live auth failures.
 */
@Controller('v1')
export class PleoApiController {
  constructor(@Inject(SandboxState) private readonly state: SandboxState) {}

  @Get('introspect')
  introspect(@Req() req: Request, @Res() res: Response): void {
    const key = this.authenticate(req, res);
    if (!key) return;
    res.status(200).json({
      data: {
        authMethod: 'API_KEY',
        clientId: key.clientId,
        scope: key.scopes.join(' '),
        applicationName: key.applicationName,
        subjectURN: `urn:pleo:${key.subject}:${key.subjectId}`,
      },
    });
  }

  @Get('employees')
  employees(@Req() req: Request, @Res() res: Response): void {
    const key = this.authorize(req, res, 'users:read');
    if (!key) return;
    res.status(200).json(page([{ id: stableId(key, 'employee-1'), companyId: key.subjectId, firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com' }]));
  }

  @Get('export-jobs')
  exportJobs(@Req() req: Request, @Res() res: Response): void {
    const key = this.authorize(req, res, 'export-jobs:read');
    if (!key) return;
    res.status(200).json(page([{ id: stableId(key, 'export-job-1'), companyId: key.subjectId, status: 'completed', createdAt: key.createdAt.toISOString() }]));
  }

  /** Starts an export (needs `export-jobs:write`); answers the parameters it was given, to show a body arrived intact. */
  @Post('export-jobs')
  createExportJob(@Req() req: Request, @Res() res: Response): void {
    const key = this.authorize(req, res, 'export-jobs:write');
    if (!key) return;
    res.status(201).json({ data: { id: randomUUID(), companyId: key.subjectId, status: 'pending', parameters: (req.body as unknown) ?? null } });
  }

  /** An export file of `bytes` bytes (default 1 MiB, at most 256 MiB), streamed in chunks. */
  @Get('export-jobs/:jobId/file')
  exportFile(@Req() req: Request, @Res() res: Response, @Param('jobId') _jobId: string, @Query('bytes') bytes?: string): void {
    const key = this.authorize(req, res, 'export-jobs:read');
    if (!key) return;
    const total = Math.min(Math.max(Number(bytes ?? 1_048_576) || 0, 0), 256 * 1_048_576);
    res.status(200).setHeader('Content-Type', 'text/csv');
    res.setHeader('Content-Length', String(total));
    const line = Buffer.from(`${'2026-11-30,expense,42.00,EUR'.padEnd(63, ' ')}\n`);
    const chunk = Buffer.concat(Array.from({ length: 1024 }, () => line));
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += part.length;
        if (!res.write(part)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  }

  private authenticate(req: Request, res: Response): SandboxKey | undefined {
    const credential = readBasicCredential(req.headers.authorization);
    const key = credential ? this.state.authenticate(credential.username) : undefined;
    if (!key) {
      res.status(401).setHeader('WWW-Authenticate', 'Basic realm="Pleo API"');
      res.json(pleoError(401, 'Unauthorized', 'The API key is missing, unknown or no longer valid.'));
      return undefined;
    }
    return key;
  }

  private authorize(req: Request, res: Response, scope: string): SandboxKey | undefined {
    const key = this.authenticate(req, res);
    if (!key) return undefined;
    if (!key.scopes.includes(scope)) {
      res.status(403).json(pleoError(403, 'Forbidden', `The API key does not have the scope ${scope}.`));
      return undefined;
    }
    return key;
  }
}

function pleoError(status: number, title: string, detail: string): Record<string, unknown> {
  return { type: 'about:blank', title, status, detail, traceId: randomUUID() };
}

function page<T>(data: T[]): { data: T[]; pagination: Record<string, unknown> } {
  return {
    data,
    pagination: { hasPreviousPage: false, hasNextPage: false, startCursor: null, endCursor: null, total: data.length },
  };
}

function stableId(key: SandboxKey, what: string): string {
  return `${what}-${key.subjectId.slice(0, 8)}`;
}
