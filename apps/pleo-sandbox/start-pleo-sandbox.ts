import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { KeywardLogger, NestLoggerAdapter } from '@keyward/observability';
import { PleoSandboxModule } from './pleo-sandbox.module';
import { SandboxState } from './sandbox-state';

export interface PleoSandboxOptions {
  /** 0 picks a free port (tests). */
  port: number;
  /** Defaults to 127.0.0.1: the sandbox is for this machine unless told otherwise. */
  host?: string;
  /** Nest's own start-up lines go here; silent when absent. */
  logger?: KeywardLogger;
  /** Calls per key per sliding minute before 429 (Pleo's ~600); 0 = none. */
  ratePerMinute?: number;
}

export interface RunningPleoSandbox {
  /** Base URL to use as PLEO_API_BASE_URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** The sandbox's memory, for tests that want to look without HTTP. */
  state: SandboxState;
  close(): Promise<void>;
}

/** Starts the Pleo sandbox in this process: `main.ts` and the tests both use it. */
export async function startPleoSandbox(options: PleoSandboxOptions): Promise<RunningPleoSandbox> {
  const state = new SandboxState(2_000, options.ratePerMinute ?? 600);
  const app = await NestFactory.create<NestExpressApplication>(PleoSandboxModule.forRoot(state), {
    logger: options.logger ? new NestLoggerAdapter(options.logger) : false,
    abortOnError: false,
  });
  app.disable('x-powered-by');
  const host = options.host ?? '127.0.0.1';
  await app.listen(options.port, host);
  const server = app.getHttpServer();
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closed = false;
  return {
    url: `http://${urlHost}:${port}`,
    state,
    close: async () => {
      if (closed) return;
      closed = true;
      // Keep-alive clients would otherwise hold the server open until their idle timeout.
      server.closeAllConnections();
      await app.close();
    },
  };
}
