export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency is usable, optionally with details an operator should see. */
  check: () => Promise<void | Record<string, unknown>>;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; error?: string; details?: Record<string, unknown> }>;
}

/** Readiness checks registered by the modules that own a dependency (Postgres, RabbitMQ, secrets). */
export class HealthChecks {
  private readonly checks: ReadinessCheck[] = [];
  private draining = false;

  register(check: ReadinessCheck): void {
    this.checks.push(check);
  }

  /** During shutdown the service reports not ready so traffic moves elsewhere. */
  markDraining(): void {
    this.draining = true;
  }

  async readiness(timeoutMs = 3_000): Promise<ReadinessReport> {
    const checks: ReadinessReport['checks'] = {};
    await Promise.all(
      this.checks.map(async ({ name, check }) => {
        try {
          const details = await withTimeout(check(), timeoutMs);
          checks[name] = details ? { ok: true, details } : { ok: true };
        } catch (error) {
          // Only a short reason: no connection strings, no stack.
          checks[name] = { ok: false, error: shortReason(error) };
        }
      }),
    );
    if (this.draining) checks.shutdown = { ok: false, error: 'draining' };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

function shortReason(error: unknown): string {
  const e = error as { code?: string; message?: string };
  if (e?.code) return String(e.code);
  return (e?.message ?? 'failed')
    .split('\n')[0]
    .replace(/\w+:\/\/\S+/g, '[url]')
    .slice(0, 120);
}
