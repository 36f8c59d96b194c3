import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { Agent, Dispatcher, errors } from 'undici';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';

export interface PleoAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export type ForwardFailure = { failed: 'timeout' | 'unreachable' };

/**
 * Sends a call to Pleo over kept-alive connections (undici) and hands back the answer as a
 * stream. No retries and no circuit breaker: the caller owns its retries, and a 429 for one
 * credential must never stall the calls of other tenants.
 */
@Injectable()
export class PleoForwarder implements OnApplicationShutdown {
  private readonly agent: Agent;
  private readonly origin: string;
  private readonly basePath: string;

  constructor(@Inject(KEYWARD_CONFIG) config: KeywardConfig) {
    const base = new URL(config.pleo.baseUrl);
    this.origin = base.origin;
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.agent = new Agent({
      connections: 256,
      keepAliveTimeout: 30_000,
      headersTimeout: config.pleo.timeoutMs,
      // Between two chunks of the answer, not for the whole of a large export.
      bodyTimeout: config.pleo.timeoutMs,
      connect: { timeout: config.pleo.connectTimeoutMs },
    });
  }

  async forward(request: {
    method: Dispatcher.HttpMethod;
    path: string;
    query: string;
    headers: Record<string, string | string[]>;
    body: Readable | Buffer | null;
    signal: AbortSignal;
  }): Promise<PleoAnswer | ForwardFailure> {
    try {
      const answer = await this.agent.request({
        origin: this.origin,
        path: `${this.basePath}${request.path}${request.query}`,
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: request.signal,
      });
      return { status: answer.statusCode, headers: answer.headers, body: answer.body };
    } catch (error) {
      return { failed: isTimeout(error) ? 'timeout' : 'unreachable' };
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof errors.HeadersTimeoutError || error instanceof errors.ConnectTimeoutError || error instanceof errors.BodyTimeoutError;
}
