import { randomBytes, randomUUID } from 'node:crypto';

/**
 * The sandbox's whole memory: the keys it issued, the fault it is injecting, and a ring of recent
 * requests. Nothing is persisted; a restart forgets everything, as a test double should.
 */
export type SandboxSubject = 'company' | 'organization';

const DEFAULT_SANDBOX_SCOPES = ['accounts:read', 'export-jobs:read', 'export-jobs:write', 'users:read'];

export interface SandboxKey {
  id: string;
  apiKey: string;
  subject: SandboxSubject;
  /** The company id, or the organisation id for an organisation key. */
  subjectId: string;
  scopes: string[];
  clientId: string;
  applicationName: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export type FaultStatus = 429 | 500 | 503;

export interface SandboxFault {
  status?: FaultStatus;
  delayMs: number;
  /** Requests still to be affected; undefined = no count limit. */
  remaining?: number;
  /** When the fault stops by itself; undefined = until DELETE /_sandbox/faults. */
  until?: Date;
  retryAfterSeconds: number;
}

export interface RecordedRequest {
  /** Increasing number of the request, so a reader can page with `after` and notice gaps. */
  seq: number;
  at: string;
  method: string;
  /** Path only: the query string is never recorded (it could hold a key by mistake). */
  path: string;
  status: number;
  /** The scheme of the Authorization header, if one came. */
  authScheme: 'basic' | 'bearer' | 'other' | null;
  /** Credentials reduced to their last four characters. */
  credentialLast4: string | null;
  authInHeader: boolean;
  /** True when any query parameter looked like a key (a key-like name, an issued key, a pleo_ value). */
  queryHadKeyLikeValue: boolean;
  /** True when the password part of Basic auth was not empty, as Pleo expects it to be. */
  basicPasswordNotEmpty: boolean;
  userAgent: string | null;
  fault: string | null;
  /** Names of the headers that came (never their values), to check what a proxy forwarded. */
  headerNames: string[];
}

const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const KEY_LIKE_PARAM = /(^|[_-])(key|apikey|api_key|token|access_token|auth|authorization|secret|password)$/i;

export class SandboxState {
  private readonly keysById = new Map<string, SandboxKey>();
  private readonly keysByValue = new Map<string, SandboxKey>();
  private fault: SandboxFault | null = null;
  private readonly requests: RecordedRequest[] = [];
  /** Per key id, when its calls in the last minute came (Pleo's per-credential limit). */
  private readonly callTimes = new Map<string, number[]>();
  private lastSeq = 0;

  constructor(
    private readonly maxRecorded = 2_000,
    /** Calls per credential per sliding minute, as Pleo allows (~600); 0 = no limit. */
    private ratePerMinute = 600,
  ) {}

  setRateLimit(perMinute: number): number {
    this.ratePerMinute = perMinute;
    this.callTimes.clear();
    return this.ratePerMinute;
  }

  get rateLimitPerMinute(): number {
    return this.ratePerMinute;
  }

  /**
   * Counts a call of a key against its limit: 0 when admitted, else the seconds until the
   * oldest call of the last minute leaves the window (Pleo's Retry-After). Refused calls count
   * too, as at Pleo: hammering a limit does not make room.
   */
  admitCall(apiKey: string, now = Date.now()): number {
    const key = this.keysByValue.get(apiKey);
    if (!key || this.ratePerMinute <= 0) return 0;
    const times = (this.callTimes.get(key.id) ?? []).filter((t) => t > now - 60_000);
    this.callTimes.set(key.id, times);
    if (times.length >= this.ratePerMinute) return Math.max(1, Math.ceil((times[0] + 60_000 - now) / 1000));
    times.push(now);
    return 0;
  }

  issueKey(input: { companyId?: string; scopes?: string[]; subject?: SandboxSubject; applicationName?: string }): SandboxKey {
    const key: SandboxKey = {
      id: randomUUID(),
      apiKey: newApiKey(),
      subject: input.subject ?? 'company',
      subjectId: input.companyId ?? randomUUID(),
      scopes: [...(input.scopes ?? DEFAULT_SANDBOX_SCOPES)],
      clientId: randomUUID(),
      applicationName: input.applicationName ?? 'keyward sandbox integration',
      createdAt: new Date(),
      revokedAt: null,
    };
    this.keysById.set(key.id, key);
    this.keysByValue.set(key.apiKey, key);
    return key;
  }

  key(id: string): SandboxKey | undefined {
    return this.keysById.get(id);
  }

  /** The live key with this value; a revoked or unknown key answers undefined, as Pleo's 401. */
  authenticate(apiKey: string): SandboxKey | undefined {
    const key = this.keysByValue.get(apiKey);
    return key && !key.revokedAt ? key : undefined;
  }

  isIssuedKey(value: string): boolean {
    return this.keysByValue.has(value);
  }

  revoke(id: string): SandboxKey | undefined {
    const key = this.keysById.get(id);
    if (key && !key.revokedAt) key.revokedAt = new Date();
    return key;
  }

  setScopes(id: string, scopes: string[]): SandboxKey | undefined {
    const key = this.keysById.get(id);
    if (key) key.scopes = [...scopes];
    return key;
  }

  setFault(input: { status?: FaultStatus; delayMs?: number; count?: number; durationMs?: number; retryAfterSeconds?: number }): SandboxFault {
    this.fault = {
      status: input.status,
      delayMs: input.delayMs ?? 0,
      remaining: input.count,
      until: input.durationMs !== undefined ? new Date(Date.now() + input.durationMs) : undefined,
      retryAfterSeconds: input.retryAfterSeconds ?? 1,
    };
    return { ...this.fault };
  }

  clearFault(): void {
    this.fault = null;
  }

  currentFault(): SandboxFault | null {
    if (this.fault?.until && this.fault.until.getTime() <= Date.now()) this.fault = null;
    return this.fault ? { ...this.fault } : null;
  }

  /** The fault that applies to one Pleo API request, consuming one from its count. */
  takeFault(): SandboxFault | null {
    const fault = this.currentFault();
    if (!fault || !this.fault) return null;
    if (this.fault.remaining !== undefined) {
      this.fault.remaining -= 1;
      if (this.fault.remaining <= 0) this.fault = null;
    }
    return fault;
  }

  record(request: Omit<RecordedRequest, 'seq'>): void {
    this.lastSeq += 1;
    this.requests.push({ seq: this.lastSeq, ...request });
    if (this.requests.length > this.maxRecorded) this.requests.splice(0, this.requests.length - this.maxRecorded);
  }

  /** The newest `limit` requests, or with `after` the oldest `limit` requests after that seq. */
  recentRequests(limit = 200, after?: number): RecordedRequest[] {
    const n = Math.max(1, Math.min(limit, this.maxRecorded));
    if (after !== undefined)
      return this.requests
        .filter((r) => r.seq > after)
        .slice(0, n)
        .map((r) => ({ ...r }));
    return this.requests.slice(-n).map((r) => ({ ...r }));
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** Whether a query string carried anything that looks like a key. */
  queryHasKeyLikeValue(query: URLSearchParams): boolean {
    for (const [name, value] of query) {
      if (KEY_LIKE_PARAM.test(name)) return true;
      if (/^pleo_/i.test(value) || this.isIssuedKey(value)) return true;
    }
    return false;
  }
}

/** `pleo_` and 40 random letters and digits: as long and opaque as a real key. */
function newApiKey(): string {
  const bytes = randomBytes(40);
  let out = 'pleo_';
  for (const b of bytes) out += KEY_ALPHABET[b % KEY_ALPHABET.length];
  return out;
}
