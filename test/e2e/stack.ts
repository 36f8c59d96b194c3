import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs keyward's services as separate processes from the build in dist/, the way they run in
 * production, and keeps everything each one writes so tests can search it.
 */
export const SERVICES = ['intake', 'validator', 'rotation', 'monitor', 'gateway'] as const;
export type StackService = (typeof SERVICES)[number] | 'pleo-sandbox';

const root = join(__dirname, '..', '..');

function entryPoint(service: StackService): string {
  return join(root, 'dist', 'apps', service, 'main.js');
}

export function assertBuilt(): void {
  const missing = [...SERVICES, 'pleo-sandbox' as const].filter((s) => !existsSync(entryPoint(s)));
  if (missing.length) throw new Error(`Build the services first (npm run build): missing ${missing.map(entryPoint).join(', ')}`);
}

export class ServiceProcess {
  private child?: ChildProcess;
  /** Everything the service wrote since its first start, across restarts: never cleared. */
  readonly output: string[] = [];
  private mark = 0;

  constructor(
    readonly name: StackService,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(readyWithinMs = 90_000): Promise<void> {
    const child = spawn(process.execPath, [entryPoint(this.name)], {
      env: { PATH: process.env.PATH ?? '', ...this.env, PORT: String(this.port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => this.output.push(chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => this.output.push(chunk.toString('utf8')));
    await this.waitReady(readyWithinMs);
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const path = this.name === 'pleo-sandbox' ? '/health/live' : '/health/ready';
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`${this.name} exited with ${this.child.exitCode}:\n${this.output.join('').slice(-3000)}`);
      }
      try {
        const res = await fetch(`${this.url}${path}`);
        if (res.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.output.join('').slice(-3000)}`);
  }

  /** SIGKILL: the crash case, nothing gets to finish. */
  async kill(): Promise<void> {
    await this.stop('SIGKILL');
  }

  /** `text()` reads from here on (to look at one run); `allText()` still has everything. */
  clearOutput(): void {
    this.mark = this.output.length;
  }

  /** Stops the process; resolves with its exit code (null when a signal ended it). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** What was written since the last clearOutput(). */
  text(): string {
    return this.output.slice(this.mark).join('');
  }

  /** Everything written since the first start, early start-up lines included: for canary searches. */
  allText(): string {
    return this.output.join('');
  }
}
