import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import CircuitBreaker from 'opossum';
import { Agent, Dispatcher } from 'undici';
import { z } from 'zod';
import { ApiKey } from '@keyward/key-material';
import { KeywardLogger, Metrics, registerSecret } from '@keyward/observability';
import { IntrospectionResult, PleoFailure, PleoResponse, UnreachableReason } from './pleo-results';
import { parseRetryAfter, RetryAfterGate } from './retry-after';
import { parseSubjectUrn } from './subject-urn';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface BreakerSettings {
  /** How long an open circuit fails fast before letting one trial call through (half-open). */
  resetTimeoutMs: number;
  /** Failure share (timeouts, 5xx, 429, network) in the rolling window that opens the circuit. */
  errorThresholdPercentage: number;
  /** Calls in the window before the share counts at all. */
  volumeThreshold: number;
  rollingCountTimeoutMs: number;
}

const DEFAULT_BREAKER: BreakerSettings = {
  resetTimeoutMs: 30_000,
  errorThresholdPercentage: 50,
  volumeThreshold: 5,
  rollingCountTimeoutMs: 10_000,
};

export interface PleoClientOptions {
  baseUrl: string;
  /** Whole-call budget (connect, headers and body). */
  timeoutMs: number;
  connectTimeoutMs: number;
  allowOrganizationKeys: boolean;
  breaker?: Partial<BreakerSettings>;
  metrics?: Metrics;
  logger?: KeywardLogger;
  /** Keep-alive connections per origin. */
  connections?: number;
  maxResponseBytes?: number;
}

export type CircuitState = 'closed' | 'half_open' | 'open';

/** What the breaker's action hands back: the raw answer, before any interpretation. */
interface RawAnswer {
  status: number;
  retryAfter?: string | string[];
  text: string;
}

/** A non-2xx status, thrown inside the breaker so it can count it (or not: see errorFilter). */
class PleoStatusError extends Error {
  constructor(readonly answer: RawAnswer) {
    super(`HTTP ${answer.status}`);
    this.name = 'PleoStatusError';
  }
}

class ResponseTooLargeError extends Error {
  readonly code = 'response_too_large';
}

const introspectionBody = z.object({
  data: z.object({
    authMethod: z.string().min(1).max(100),
    clientId: z.string().max(200).nullish(),
    scope: z.string().max(20_000).nullish(),
    applicationName: z.string().max(500).nullish(),
    subjectURN: z.string().min(1).max(300),
  }),
});

const GAUGE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * keyward's only way to call Pleo. Keys travel only in `Authorization: Basic base64("<key>:")`,
 * over a keep-alive agent with connect and response timeouts. One circuit breaker per Pleo
 * environment opens on timeouts, network errors, 5xx and 429 — never on 401/403, which are
 * answers about one key, not about Pleo. After a 429, no call goes out for that credential
 * until Retry-After has passed.
 */
export class PleoClient {
  readonly baseUrl: string;
  readonly environment: string;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly agent: Agent;
  private readonly breaker: CircuitBreaker<[HttpMethod, string, ApiKey, string | undefined, AbortSignal], RawAnswer>;
  private readonly breakerSettings: BreakerSettings;
  private readonly gate = new RetryAfterGate();
  /** Per-process pepper: gate keys identify a credential without keeping anything reusable. */
  private readonly gatePepper = randomBytes(32);
  private readonly userAgent = `keyward/${keywardVersion()}`;
  private readonly maxResponseBytes: number;
  private openedAt = 0;
  private readonly requests;
  private readonly duration;
  private readonly circuitGauge;

  constructor(private readonly options: PleoClientOptions) {
    const url = new URL(options.baseUrl);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.baseUrl = `${this.origin}${this.basePath}`;
    this.environment = url.host;
    this.maxResponseBytes = options.maxResponseBytes ?? 1_048_576;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      connections: options.connections ?? 32,
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });

    this.breakerSettings = { ...DEFAULT_BREAKER, ...options.breaker };
    this.breaker = new CircuitBreaker((method, path, key, body, signal) => this.send(method, path, key, body, signal), {
      // Our own timeouts (undici + the abort signal) end the request; the breaker need not race it.
      timeout: false,
      resetTimeout: this.breakerSettings.resetTimeoutMs,
      errorThresholdPercentage: this.breakerSettings.errorThresholdPercentage,
      volumeThreshold: this.breakerSettings.volumeThreshold,
      rollingCountTimeout: this.breakerSettings.rollingCountTimeoutMs,
      name: `pleo:${this.environment}`,
      // Answers about one credential (401, 403, and 429: Pleo's limit is per credential, ADR 18)
      // or about our request (other 4xx) say nothing about Pleo's health: they must never open
      // the circuit for every tenant. A 429 backs off that credential only (RetryAfterGate).
      errorFilter: (error: unknown) => error instanceof PleoStatusError && concernsOneCredentialOrRequest(error.answer.status),
    });

    const metrics = options.metrics;
    this.requests = metrics?.counter('keyward_pleo_requests_total', 'Calls to Pleo, by operation and outcome', ['operation', 'outcome']);
    this.duration = metrics?.histogram('keyward_pleo_request_seconds', 'Duration of calls to Pleo that left the process', ['operation'], [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    this.circuitGauge = metrics?.gauge('keyward_pleo_circuit_state', 'Circuit to Pleo: 0 closed, 1 half-open, 2 open', ['environment']);
    this.circuitGauge?.set({ environment: this.environment }, 0);

    const log = options.logger;
    this.breaker.on('open', () => {
      this.openedAt = Date.now();
      this.circuitGauge?.set({ environment: this.environment }, GAUGE_VALUE.open);
      log?.warn('Pleo circuit opened: calls fail fast as "unreachable" until a trial call succeeds', {
        environment: this.environment,
        retryInMs: this.breakerSettings.resetTimeoutMs,
      });
    });
    this.breaker.on('halfOpen', () => {
      this.circuitGauge?.set({ environment: this.environment }, GAUGE_VALUE.half_open);
      log?.info('Pleo circuit half-open: letting one trial call through', { environment: this.environment });
    });
    this.breaker.on('close', () => {
      this.circuitGauge?.set({ environment: this.environment }, GAUGE_VALUE.closed);
      log?.info('Pleo circuit closed: Pleo answers again', { environment: this.environment });
    });
  }

  get circuitState(): CircuitState {
    return this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'half_open' : 'closed';
  }

  /** `GET /v1/introspect`: who the key belongs to and what it may do. */
  async introspect(key: ApiKey): Promise<IntrospectionResult> {
    const response = await this.request(key, 'GET', '/v1/introspect', { operation: 'introspect' });
    if (response.outcome !== 'ok') return response;
    const parsed = introspectionBody.safeParse(response.body);
    if (!parsed.success) {
      return this.unexpected('introspect', response.status, `introspection body: ${parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ')}`);
    }
    const data = parsed.data.data;
    const subject = parseSubjectUrn(data.subjectURN);
    if (!subject) return this.unexpected('introspect', response.status, 'subjectURN is neither a company nor an organization');
    const scopes = (data.scope ?? '').split(/\s+/).filter(Boolean);
    if (subject.type === 'organization' && !this.options.allowOrganizationKeys) {
      return { outcome: 'unsupported_subject', subjectType: 'organization', subjectId: subject.id, scopes };
    }
    return {
      outcome: 'valid',
      authMethod: data.authMethod,
      companyId: subject.id,
      subjectType: subject.type,
      subjectId: subject.id,
      scopes,
      clientId: data.clientId ?? null,
      applicationName: data.applicationName ?? null,
    };
  }

  /**
   * Any call to Pleo's API with a tenant's key, through the same breaker, timeouts and
   * Retry-After handling. `path` is relative to the base URL (e.g. `/v1/export-jobs?limit=10`)
   * and must never carry key material.
   */
  async request(key: ApiKey, method: HttpMethod, path: string, options: { body?: unknown; operation?: string } = {}): Promise<PleoResponse> {
    if (!path.startsWith('/')) throw new TypeError('PleoClient.request: path must start with "/"');
    const operation = options.operation ?? operationName(method, path);
    const gateKey = key.fingerprint(this.gatePepper);
    const waitMs = this.gate.waitFor(gateKey);
    if (waitMs > 0) {
      // Pleo told us to wait for this credential: answer without calling.
      this.requests?.inc({ operation, outcome: 'deferred_retry_after' });
      return { outcome: 'unreachable', reason: 'rate_limited', retryAfterMs: waitMs };
    }

    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    const stopTimer = this.duration?.startTimer({ operation });
    try {
      const answer = await this.breaker.fire(method, path, key, body, signal);
      stopTimer?.();
      return this.success(operation, answer);
    } catch (error) {
      if (!isBreakerRejection(error)) stopTimer?.();
      const failure = this.classify(error, signal);
      if (failure.outcome === 'unreachable' && failure.reason === 'rate_limited' && failure.retryAfterMs !== undefined) {
        this.gate.block(gateKey, failure.retryAfterMs);
      }
      this.requests?.inc({ operation, outcome: failure.outcome === 'unreachable' ? failure.reason : failure.outcome });
      return failure;
    }
  }

  /** Closes the keep-alive connections (on shutdown). */
  async close(): Promise<void> {
    this.breaker.shutdown();
    await this.agent.close().catch(() => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** The breaker's action: one HTTP exchange. The only place a key becomes a header. */
  private async send(method: HttpMethod, path: string, key: ApiKey, body: string | undefined, signal: AbortSignal): Promise<RawAnswer> {
    const value = key.reveal();
    registerSecret(value);
    const headers: Record<string, string> = {
      authorization: `Basic ${Buffer.from(`${value}:`, 'utf8').toString('base64')}`,
      accept: 'application/json',
      'user-agent': this.userAgent,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await this.agent.request({ origin: this.origin, path: `${this.basePath}${path}`, method, headers, body, signal });
    const text = await readBounded(response, this.maxResponseBytes);
    const answer: RawAnswer = { status: response.statusCode, retryAfter: response.headers['retry-after'], text };
    if (answer.status < 200 || answer.status > 299) throw new PleoStatusError(answer);
    return answer;
  }

  private success(operation: string, answer: RawAnswer): PleoResponse {
    if (answer.text.trim() === '') {
      this.requests?.inc({ operation, outcome: 'ok' });
      return { outcome: 'ok', status: answer.status, body: null };
    }
    try {
      const body: unknown = JSON.parse(answer.text);
      this.requests?.inc({ operation, outcome: 'ok' });
      return { outcome: 'ok', status: answer.status, body };
    } catch {
      return this.unexpected(operation, answer.status, 'body is not JSON');
    }
  }

  private unexpected(operation: string, status: number, detail: string): PleoFailure {
    this.requests?.inc({ operation, outcome: 'unexpected_response' });
    this.options.logger?.warn('Pleo answered in a shape keyward does not understand', { environment: this.environment, operation, status, detail });
    return { outcome: 'unexpected_response', status, detail };
  }

  private classify(error: unknown, signal: AbortSignal): PleoFailure {
    if (error instanceof PleoStatusError) {
      const status = error.answer.status;
      if (status === 401) return { outcome: 'invalid_key', status: 401 };
      if (status === 403) return { outcome: 'forbidden', status: 403 };
      if (status === 429) return { outcome: 'unreachable', reason: 'rate_limited', status, retryAfterMs: parseRetryAfter(error.answer.retryAfter) };
      if (status === 408) return { outcome: 'unreachable', reason: 'timeout', status };
      if (status >= 500) return { outcome: 'unreachable', reason: 'server_error', status };
      return { outcome: 'unexpected_response', status, detail: `HTTP ${status}` };
    }
    if (isBreakerRejection(error)) {
      const remaining = Math.max(0, this.openedAt + this.breakerSettings.resetTimeoutMs - Date.now());
      return { outcome: 'unreachable', reason: 'circuit_open', retryAfterMs: remaining };
    }
    if (error instanceof ResponseTooLargeError) return { outcome: 'unexpected_response', status: 200, detail: 'response body too large' };
    return { outcome: 'unreachable', reason: networkReason(error, signal) };
  }
}

/** 4xx except 408 (Pleo timed out): 5xx, 408, timeouts and connection errors are failures of Pleo itself. */
function concernsOneCredentialOrRequest(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408;
}

function isBreakerRejection(error: unknown): boolean {
  return (error as { code?: unknown })?.code === 'EOPENBREAKER';
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);

function networkReason(error: unknown, signal: AbortSignal): UnreachableReason {
  const e = error as { code?: unknown; name?: unknown; cause?: { code?: unknown } };
  if (signal.aborted || e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  if (TIMEOUT_CODES.has(String(e?.code)) || TIMEOUT_CODES.has(String(e?.cause?.code))) return 'timeout';
  return 'network';
}

async function readBounded(response: Dispatcher.ResponseData, maxBytes: number): Promise<string> {
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.body.destroy();
    throw new ResponseTooLargeError('response too large');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      response.body.destroy();
      throw new ResponseTooLargeError('response too large');
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A metric label from a path: ids and query strings removed, so labels stay few. */
function operationName(method: HttpMethod, path: string): string {
  const clean = path
    .split('?')[0]
    .split('/')
    .map((segment) => (/^[0-9a-f-]{8,}$/i.test(segment) || /^\d+$/.test(segment) ? ':id' : segment))
    .join('/');
  return `${method} ${clean}`.slice(0, 80);
}

let cachedVersion: string | undefined;

/** keyward's version from its package.json, found from here upwards (src and dist alike). */
function keywardVersion(): string {
  if (cachedVersion) return cachedVersion;
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'keyward' && pkg.version) return (cachedVersion = pkg.version);
      } catch {
        /* keep looking */
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return (cachedVersion = process.env.npm_package_version ?? '0.0.0');
}
