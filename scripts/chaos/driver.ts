import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { createEvent } from '@keyward/contracts';
import { ConnectionAnswer, issuedKeyAnswer, readAnswer, readConnection, submissionAnswer } from './answers';
import { CanaryScanner } from './canary-scanner';
import { ServiceProcess } from './processes';

/**
 * Drives tenants through their lifecycle the way an integration does (intake's HTTP API, the
 * gateway, published auth.failed, the sandbox's control API) and writes down, from its own
 * actions only, what each tenant and credential must end as.
 */
export type ConnectionStatus = 'not_connected' | 'pending_validation' | 'active' | 'degraded' | 'reconnect_required' | 'disabled' | 'uninstalled';
type InvalidationReason = 'replaced' | 'compromised' | 'uninstalled';

export interface IssuedKey {
  id: string;
  apiKey: string;
  companyId: string;
  last4: string;
}

export interface CredentialPlan {
  credentialId: string;
  last4: string;
  /** true: exactly one key.activated; false: none; 'maybe': at most one (a race the driver started on purpose). */
  activated: boolean | 'maybe';
  /** The one key.invalidated this credential must get, 'maybe' (at most one, any reason) or null (none). */
  invalidated: InvalidationReason | 'maybe' | null;
}

export interface TenantPlan {
  id: string;
  phase: string;
  story: string;
  companyId?: string;
  expected: { status: ConnectionStatus; last4?: string[] };
  credentials: Map<string, CredentialPlan>;
  alerts: number;
  /** Alerts that may or may not come: the monitor skips one for a key already replaced when it looks. */
  maybeAlerts: number;
  /** Keys reported compromised, with the moment the report was answered. */
  compromised: { last4: string; answeredAt: number }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface HttpAnswer {
  status: number;
  /** Parsed JSON, the text if it was not JSON, undefined if empty: read through ./answers. */
  body: unknown;
}

/** Whether intake shows the tenant as the plan expects: its status, and one of the expected keys. */
export function asPlanned(t: TenantPlan, conn: ConnectionAnswer | undefined): boolean {
  const last4 = conn?.key?.last4;
  return conn?.status === t.expected.status && (!t.expected.last4 || (last4 !== undefined && t.expected.last4.includes(last4)));
}

export class Driver {
  readonly tenants = new Map<string, TenantPlan>();
  readonly externalEvents: { id: string; type: string; tenantId: string; at: number }[] = [];
  private readonly usedLast4 = new Set<string>();
  private next = 0;
  httpAnswers = 0;
  /** Answers by status class while a dependency was down, e.g. intake during the Postgres outage. */
  readonly answersByStatus = new Map<number, number>();
  phase = 'start-up';

  constructor(
    private readonly intakes: ServiceProcess[],
    private readonly gateways: ServiceProcess[],
    private readonly sandbox: ServiceProcess,
    private readonly scanner: CanaryScanner,
    private readonly token: string,
    private readonly amqpUrl: string,
    private readonly exchange: string,
  ) {}

  // ---- transport -------------------------------------------------------------------------

  private async http(base: ServiceProcess[], method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    // Round robin over the replicas that are up; a replica that is being restarted is skipped.
    for (let attempt = 0; ; attempt++) {
      const up = base.filter((s) => s.running);
      const target = up[this.next++ % Math.max(1, up.length)] ?? base[0];
      try {
        const res = await fetch(`${target.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json', ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(40_000),
        });
        const text = await res.text();
        this.httpAnswers += 1;
        this.answersByStatus.set(res.status, (this.answersByStatus.get(res.status) ?? 0) + 1);
        this.scanner.scan(`HTTP answers (${target.service})`, `${res.status} ${JSON.stringify([...res.headers.entries()])}\n${text}`);
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = text;
        }
        return { status: res.status, body: parsed };
      } catch (error) {
        // The replica went away between the pick and the answer (SIGTERM/SIGKILL): another one.
        if (attempt >= 20) throw error;
        await sleep(250);
      }
    }
  }

  intake(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpAnswer> {
    return this.http(this.intakes, method, path, body, headers);
  }

  /** Like `intake`, but repeats while keyward says "try again" (5xx/429), as a well-behaved caller does. */
  async intakeUntilAnswered(method: string, path: string, body?: unknown, headers?: Record<string, string>, deadlineMs = 120_000): Promise<HttpAnswer> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const res = await this.intake(method, path, body, headers);
      if ((res.status < 500 && res.status !== 429) || Date.now() > deadline) return res;
      await sleep(300 + Math.random() * 400);
    }
  }

  async sandboxCall(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.sandbox.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`sandbox ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  async fault(body: { status?: 429 | 500 | 503; delayMs?: number; count?: number; durationMs?: number; retryAfterSeconds?: number }): Promise<void> {
    await this.sandboxCall('POST', '/_sandbox/faults', body);
  }

  async clearFault(): Promise<void> {
    await this.sandboxCall('DELETE', '/_sandbox/faults');
  }

  /** A key from the sandbox whose last4 no other key of this run has, so the request log's last4 names it alone. */
  async issueKey(options: { companyId?: string; scopes?: string[] } = {}): Promise<IssuedKey> {
    for (;;) {
      const key = readAnswer(issuedKeyAnswer, 'sandbox POST /_sandbox/keys', await this.sandboxCall('POST', '/_sandbox/keys', options));
      this.scanner.register(key.apiKey);
      const last4 = key.apiKey.slice(-4);
      if (this.usedLast4.has(last4)) continue;
      this.usedLast4.add(last4);
      return { id: key.id, apiKey: key.apiKey, companyId: key.companyId, last4 };
    }
  }

  // ---- lifecycle steps ---------------------------------------------------------------------

  newTenant(story: string): TenantPlan {
    const plan: TenantPlan = {
      id: `chaos-${randomUUID().slice(0, 12)}`,
      phase: this.phase,
      story,
      expected: { status: 'not_connected' },
      credentials: new Map(),
      alerts: 0,
      maybeAlerts: 0,
      compromised: [],
    };
    this.tenants.set(plan.id, plan);
    return plan;
  }

  /** PUT a key; keyward's 202/200 names the credential, which is returned. Retries on 5xx (e.g. Postgres down). */
  async submit(t: TenantPlan, key: IssuedKey, plan: Omit<CredentialPlan, 'credentialId' | 'last4'>, wait = 0): Promise<string> {
    const res = await this.intakeUntilAnswered('PUT', `/v1/tenants/${t.id}/pleo/key`, { apiKey: key.apiKey }, wait ? { prefer: `wait=${wait}` } : {});
    if (res.status !== 202 && res.status !== 200) throw new Error(`submission for ${t.id} answered ${res.status}: ${JSON.stringify(res.body)}`);
    const { credentialId } = readAnswer(submissionAnswer, `submission for ${t.id} (${res.status})`, res.body);
    t.credentials.set(credentialId, { credentialId, last4: key.last4, ...plan });
    return credentialId;
  }

  async connection(t: TenantPlan): Promise<ConnectionAnswer | undefined> {
    return readConnection((await this.intakeUntilAnswered('GET', `/v1/tenants/${t.id}/pleo/connection`)).body);
  }

  async waitForStatus(t: TenantPlan, status: ConnectionStatus, timeoutMs = 240_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const conn = await this.connection(t);
      if (conn?.status === status) return;
      if (Date.now() > deadline) throw new Error(`${t.id} (${t.story}) is ${conn?.status}, not ${status}, after ${timeoutMs} ms`);
      await sleep(300);
    }
  }

  /** A new tenant with one valid key, submitted; expected active with it. */
  async connectTenant(story: string, wait = 0): Promise<{ t: TenantPlan; key: IssuedKey }> {
    const t = this.newTenant(story);
    const key = await this.issueKey();
    t.companyId = key.companyId;
    await this.submit(t, key, { activated: true, invalidated: null }, wait);
    t.expected = { status: 'active', last4: [key.last4] };
    return { t, key };
  }

  private activeCredential(t: TenantPlan, last4: string): CredentialPlan {
    const c = [...t.credentials.values()].find((x) => x.last4 === last4);
    if (!c) throw new Error(`no credential ${last4} for ${t.id}`);
    return c;
  }

  /** Same company, new key: the old one is invalidated as replaced. */
  async replace(t: TenantPlan, wait = 0): Promise<IssuedKey> {
    const old = this.activeCredential(t, t.expected.last4![0]);
    const key = await this.issueKey({ companyId: t.companyId });
    await this.submit(t, key, { activated: true, invalidated: null }, wait);
    old.invalidated = 'replaced';
    t.expected = { status: 'active', last4: [key.last4] };
    t.story += ' → replaced';
    return key;
  }

  /** A key of another company: rejected, the active key stays. */
  async wrongCompany(t: TenantPlan, wait = 0): Promise<void> {
    const key = await this.issueKey();
    await this.submit(t, key, { activated: false, invalidated: null }, wait);
    t.story += ' → wrong company';
  }

  async compromise(t: TenantPlan): Promise<void> {
    const current = this.activeCredential(t, t.expected.last4![0]);
    const res = await this.intakeUntilAnswered('POST', `/v1/tenants/${t.id}/pleo/compromise`, {});
    if (res.status !== 200) throw new Error(`compromise of ${t.id} answered ${res.status}: ${JSON.stringify(res.body)}`);
    t.compromised.push({ last4: current.last4, answeredAt: Date.now() });
    current.invalidated = 'compromised';
    t.expected = { status: 'disabled' };
    t.alerts += 1;
    t.story += ' → compromised';
  }

  /** After a compromise: the customer pastes a new key of the same company. */
  async reconnect(t: TenantPlan, wait = 0): Promise<void> {
    const key = await this.issueKey({ companyId: t.companyId });
    await this.submit(t, key, { activated: true, invalidated: null }, wait);
    t.expected = { status: 'active', last4: [key.last4] };
    t.story += ' → new key';
  }

  async uninstall(t: TenantPlan): Promise<void> {
    const res = await this.intakeUntilAnswered('DELETE', `/v1/tenants/${t.id}/pleo/connection`);
    if (res.status !== 202) throw new Error(`uninstall of ${t.id} answered ${res.status}`);
    for (const c of t.credentials.values()) {
      if (c.activated === true && c.invalidated === null) c.invalidated = 'uninstalled';
    }
    t.expected = { status: 'uninstalled' };
    t.story += ' → uninstalled';
  }

  /** The customer revokes the key in Pleo; keyward must notice (probe, gateway 401s or auth.failed). */
  async revokeInPleo(t: TenantPlan, key: IssuedKey): Promise<void> {
    await this.sandboxCall('POST', `/_sandbox/keys/${key.id}/revoke`);
    t.expected = { status: 'reconnect_required', last4: [key.last4] };
    t.alerts += 1;
    t.story += ' → revoked in Pleo';
  }

  /** The integration's calls through the gateway (each 401 becomes auth.failed there). */
  async callThroughGateway(t: TenantPlan, calls: number): Promise<number[]> {
    return Promise.all(Array.from({ length: calls }, async () => (await this.http(this.gateways, 'GET', `/v1/tenants/${t.id}/pleo/api/v1/employees`)).status));
  }

  /** auth.failed as another backend of the integration publishes it (without a gateway). */
  async publishAuthFailures(t: TenantPlan, credentialId: string, count: number): Promise<void> {
    const connection = await connect(this.amqpUrl);
    try {
      const channel = await connection.createConfirmChannel();
      for (let i = 0; i < count; i++) {
        const event = createEvent(
          'auth.failed',
          { tenantId: t.id, correlationId: `erp-${randomUUID()}`, producer: 'erp-sync' },
          {
            credentialId,
            status: 401,
            source: 'erp-sync',
            endpoint: '/v1/employees',
            observedAt: new Date().toISOString(),
          },
        );
        channel.publish(this.exchange, event.type, Buffer.from(JSON.stringify(event)), { persistent: true, contentType: 'application/json', messageId: event.id, type: event.type });
        this.externalEvents.push({ id: event.id, type: event.type, tenantId: t.id, at: Date.now() });
      }
      await channel.waitForConfirms();
    } finally {
      await connection.close().catch(() => undefined);
    }
  }

  credentialOf(t: TenantPlan, last4: string): string {
    return this.activeCredential(t, last4).credentialId;
  }
}
