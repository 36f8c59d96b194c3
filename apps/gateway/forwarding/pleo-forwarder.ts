import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Agent, Dispatcher, errors, util } from 'undici';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';

export interface PleoRequest {
  method: Dispatcher.HttpMethod;
  path: string;
  query: string;
  headers: Record<string, string | string[]>;
  body: Readable | Buffer | null;
}

/** Pleo's status and headers, as Pleo sent them; the caller's answer head is made from them. */
export interface PleoAnswerHead {
  status: number;
  headers: Record<string, string | string[]>;
}

/**
 * How a forwarded call ended. `failed`: Pleo gave no answer and nothing was written to the
 * caller (the gateway answers 502/504 itself). `broken`: Pleo's answer stopped part-way and the
 * caller's connection was closed. `caller-gone`: the caller went away first; the call to Pleo
 * was dropped with it.
 */
export type ForwardOutcome = { outcome: 'answered' } | { outcome: 'failed'; kind: 'timeout' | 'unreachable' } | { outcome: 'broken'; code?: string } | { outcome: 'caller-gone' };

/**
 * Sends a call to Pleo over kept-alive connections (undici) and writes the answer straight into
 * the caller's response as it arrives: no intermediate stream, no parsing, backpressure from the
 * caller pauses the read from Pleo. No retries and no circuit breaker: the caller owns its
 * retries, and a 429 for one credential must never stall the calls of other tenants.
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

  /**
   * Forwards `request` and streams Pleo's answer to `caller`, with the head that `answerHead`
   * makes of Pleo's (called once, when Pleo's status and headers arrive). Resolves when the
   * answer has been written whole, or with why not.
   */
  forward(request: PleoRequest, caller: ServerResponse, answerHead: (pleo: PleoAnswerHead) => OutgoingHttpHeaders): Promise<ForwardOutcome> {
    return new Promise<ForwardOutcome>((settle) => {
      const handler = new AnswerToCaller(caller, answerHead, settle);
      try {
        this.agent.dispatch({ origin: this.origin, path: `${this.basePath}${request.path}${request.query}`, method: request.method, headers: request.headers, body: request.body }, handler);
      } catch (error) {
        handler.onError(error as Error);
      }
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}

/** undici's handler for one call: Pleo's answer goes to the caller chunk by chunk. */
class AnswerToCaller implements Dispatcher.DispatchHandlers {
  private abortPleo: ((error?: Error) => void) | undefined;
  private headWritten = false;
  private callerGone = false;
  private settled = false;

  constructor(
    private readonly caller: ServerResponse,
    private readonly answerHead: (pleo: PleoAnswerHead) => OutgoingHttpHeaders,
    private readonly settle: (outcome: ForwardOutcome) => void,
  ) {
    caller.once('close', () => {
      if (caller.writableFinished) return;
      this.callerGone = true;
      this.abortPleo?.(new CallerGone());
    });
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.callerGone) return abort(new CallerGone());
    this.abortPleo = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx (a 100 Continue to a body we send) is not an answer; the final one follows.
    if (status < 200) return true;
    const headers = util.parseHeaders(rawHeaders);
    this.caller.writeHead(status, this.answerHead({ status, headers }));
    this.headWritten = true;
    this.caller.on('drain', resume);
    return !this.caller.writableNeedDrain;
  }

  onData(chunk: Buffer): boolean {
    // false pauses the read from Pleo until the caller's socket drains.
    return this.caller.write(chunk);
  }

  onComplete(): void {
    this.caller.end();
    this.done({ outcome: 'answered' });
  }

  onError(error: Error): void {
    if (this.callerGone || error instanceof CallerGone) return this.done({ outcome: 'caller-gone' });
    if (!this.headWritten) return this.done({ outcome: 'failed', kind: isTimeout(error) ? 'timeout' : 'unreachable' });
    this.caller.destroy();
    this.done({ outcome: 'broken', code: (error as { code?: string }).code });
  }

  private done(outcome: ForwardOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(outcome);
  }
}

class CallerGone extends Error {
  constructor() {
    super("The caller closed its connection before Pleo's answer was complete");
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof errors.HeadersTimeoutError || error instanceof errors.ConnectTimeoutError || error instanceof errors.BodyTimeoutError;
}
