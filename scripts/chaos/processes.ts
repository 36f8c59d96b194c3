import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * keyward's services as real processes from dist/, several replicas each, keeping everything
 * every process ever wrote (across kills and restarts) for the canary search.
 */
export type ServiceName = 'intake' | 'validator' | 'rotation' | 'monitor' | 'gateway' | 'pleo-sandbox';

const root = join(__dirname, '..', '..');

function entryPoint(service: ServiceName): string {
  return join(root, 'apps', service, 'main.js');
}

export function isBuilt(service: ServiceName): boolean {
  return existsSync(entryPoint(service));
}

export interface ExitRecord {
  code: number | null;
  signal: NodeJS.Signals | null;
  afterMs: number;
}

export class ServiceProcess {
  private child?: ChildProcess;
  /** Everything written by every run of this replica, never cleared. */
  private readonly chunks: string[] = [];
  private outputBytes = 0;
  starts = 0;
  /** Exits nobody asked for (a crash): each one is a failed check, whatever happened next. */
  readonly crashes: ExitRecord[] = [];
  private stopping = false;

  constructor(
    readonly service: ServiceName,
    readonly replica: number,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  get name(): string {
    return `${this.service}-${this.replica}`;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const child = spawn(process.execPath, [entryPoint(this.service)], {
      env: { PATH: process.env.PATH ?? '', ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts += 1;
    this.stopping = false;
    const startedAt = Date.now();
    child.once('exit', (code, signal) => {
      if (!this.stopping) this.crashes.push({ code, signal, afterMs: Date.now() - startedAt });
    });
    const keep = (chunk: Buffer) => {
      this.chunks.push(chunk.toString('utf8'));
      this.outputBytes += chunk.length;
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await this.waitReady(timeoutMs);
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const path = this.service === 'pleo-sandbox' ? '/health/live' : '/health/ready';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited at start:\n${this.tail()}`);
      try {
        const res = await fetch(`${this.url}${path}`);
        if (res.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** Sends a signal and waits for the exit (SIGKILL after `forceAfterMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', forceAfterMs = 40_000): Promise<ExitRecord> {
    const child = this.child;
    const started = Date.now();
    if (!child || !this.running) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null, afterMs: 0 };
    this.stopping = true;
    const exited = new Promise<ExitRecord>((r) => child.once('exit', (code, sig) => r({ code, signal: sig, afterMs: Date.now() - started })));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), forceAfterMs);
    const record = await exited;
    clearTimeout(timer);
    return record;
  }

  text(): string {
    return this.chunks.join('');
  }

  get bytesWritten(): number {
    return this.outputBytes;
  }

  tail(chars = 3000): string {
    return this.text().slice(-chars);
  }
}
