import { execFile } from 'node:child_process';
import { Pool } from 'pg';
import { SUBSCRIPTIONS } from '@keyward/contracts';
import { auditChainIntact } from './answers';
import { CanaryScanner } from './canary-scanner';
import { asPlanned, Driver } from './driver';
import { ServiceProcess } from './processes';

/**
 * What the suite reads back after (and during) the run to judge it: the database (outbox, inbox,
 * audit chain), the sandbox's request log, the services' metrics. Nothing here decides what a
 * tenant should be; that comes from the driver's plan.
 */
export class Database {
  // A pool, not one client: the suite's checks read concurrently (a client runs one query at a time).
  private readonly pool: Pool;

  constructor(readonly url: string) {
    this.pool = new Pool({ connectionString: url, application_name: 'keyward-chaos-observer', max: 4 });
    // An idle connection lost to a Postgres restart or pg_terminate_backend: the pool drops it.
    this.pool.on('error', () => undefined);
  }

  async query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    // The suite restarts Postgres and terminates backends: ask again on a fresh connection.
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.pool.query(sql, params)).rows as T[];
      } catch (error) {
        if (attempt >= 60) throw error;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

/** Sums a counter over every run of every process (a restart starts its counters at 0 again). */
export class MetricsScraper {
  private readonly byProcess = new Map<ServiceProcess, { starts: number; finished: Map<string, number>; current: Map<string, number> }>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly processes: ServiceProcess[],
    private readonly scanner: CanaryScanner,
  ) {}

  start(intervalMs = 1_000): void {
    this.timer = setInterval(() => void this.scrapeAll(), intervalMs);
  }

  async scrapeAll(): Promise<void> {
    await Promise.all(this.processes.filter((p) => p.running).map((p) => this.scrape(p)));
  }

  private async scrape(p: ServiceProcess): Promise<void> {
    let text: string;
    let health: string;
    try {
      text = await (await fetch(`${p.url}/metrics`, { signal: AbortSignal.timeout(3_000) })).text();
      health = await (await fetch(`${p.url}/health/ready`, { signal: AbortSignal.timeout(3_000) })).text();
    } catch {
      return;
    }
    this.scanner.scan(`HTTP answers (${p.service} /metrics and /health)`, `${text}\n${health}`);
    let entry = this.byProcess.get(p);
    if (!entry) this.byProcess.set(p, (entry = { starts: p.starts, finished: new Map(), current: new Map() }));
    if (entry.starts !== p.starts) {
      for (const [k, v] of entry.current) entry.finished.set(k, (entry.finished.get(k) ?? 0) + v);
      entry.current = new Map();
      entry.starts = p.starts;
    }
    const current = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^(keyward_events_consumed_total)\{([^}]*)\}\s+([0-9.e+]+)/.exec(line);
      if (!m) continue;
      const outcome = /outcome="([^"]+)"/.exec(m[2])?.[1] ?? 'unknown';
      current.set(outcome, (current.get(outcome) ?? 0) + Number(m[3]));
    }
    entry.current = current;
  }

  /** Total events handled with this outcome (ok, retry, parked, …) across every process run. */
  total(outcome: string): number {
    let sum = 0;
    for (const e of this.byProcess.values()) sum += (e.finished.get(outcome) ?? 0) + (e.current.get(outcome) ?? 0);
    return sum;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Every request the sandbox saw, paged by seq so nothing is missed; gaps are counted. */
export class PleoRequestLog {
  readonly requests: { seq: number; at: string; credentialLast4: string | null; path: string; status: number }[] = [];
  private after = 0;
  gaps = 0;
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(private readonly sandbox: ServiceProcess) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), 300);
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (;;) {
        const res = await fetch(`${this.sandbox.url}/_sandbox/requests?limit=2000&after=${this.after}`);
        const { requests } = (await res.json()) as { requests: PleoRequestLog['requests'] };
        if (!requests.length) return;
        if (requests[0].seq !== this.after + 1) this.gaps += requests[0].seq - this.after - 1;
        this.requests.push(...requests);
        this.after = requests[requests.length - 1].seq;
        if (requests.length < 2000) return;
      }
    } catch {
      /* next poll */
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function pgDump(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Everything but the sealed key store's rows, which hold key material by design (encrypted).
    execFile('pg_dump', ['--data-only', '--no-owner', '--exclude-table-data=secret_versions', url], { maxBuffer: 1024 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`pg_dump: ${error.message} ${stderr}`)) : resolve(stdout),
    );
  });
}

export interface Findings {
  lostEvents: { id: string; type: string; tenantId: string; consumer: string; createdAt: Date }[];
  unpublished: number;
  duplicateEffects: { tenantId: string; what: string }[];
  missingEffects: { tenantId: string; what: string }[];
  wrongState: { tenantId: string; story: string; expected: string; actual: string }[];
  brokenChains: string[];
  requestsAfterCompromise: { tenantId: string; last4: string; at: string; path: string }[];
}

const CONSUMERS = ['validator', 'rotation', 'monitor'] as const;

/**
 * An outbox row's payload is the event's envelope, checked against the contract before it was
 * stored (libs/messaging's Outbox); these are the fields of its data the judge reads.
 */
interface JudgedData {
  submissionId?: string;
  credentialId?: string;
  reason?: string;
}

const has = (ids: Set<string>, id: string | undefined): boolean => id !== undefined && ids.has(id);

/**
 * Reads the end state and compares it with the driver's plan.
 * - lost: an event (committed by a service, or published by the driver) that a keyward consumer
 *   subscribes to and never recorded in its inbox. The validator records nothing for work it drops
 *   by design (a superseded submission, a revoked credential, a revalidation of a key that is no
 *   longer active), so those are not counted as lost.
 * - duplicates: more than one key.activated / key.invalidated per credential, more alerts than
 *   incidents, more than one audit `credential.activated` per credential.
 */
export async function judge(db: Database, driver: Driver, pleo: PleoRequestLog): Promise<Findings> {
  const findings: Findings = { lostEvents: [], unpublished: 0, duplicateEffects: [], missingEffects: [], wrongState: [], brokenChains: [], requestsAfterCompromise: [] };

  const outbox = await db.query<{ id: string; event_type: string; tenant_id: string; payload: { data?: JudgedData } | null; created_at: Date; published_at: Date | null }>(
    'SELECT id, event_type, tenant_id, payload, created_at, published_at FROM outbox',
  );
  findings.unpublished = outbox.filter((r) => !r.published_at).length;
  const inbox = new Set((await db.query<{ consumer: string; event_id: string }>('SELECT consumer, event_id FROM inbox')).map((r) => `${r.consumer}:${r.event_id}`));
  const superseded = new Set((await db.query<{ id: string }>('SELECT id FROM submissions WHERE superseded_at IS NOT NULL')).map((r) => r.id));
  const revoked = new Set((await db.query<{ credential_id: string }>('SELECT credential_id FROM revocations')).map((r) => r.credential_id));
  const activeCredentials = new Set(
    (await db.query<{ active_credential_id: string }>('SELECT active_credential_id FROM connections WHERE active_credential_id IS NOT NULL')).map((r) => r.active_credential_id),
  );
  const droppedByDesign = (type: string, data: JudgedData): boolean =>
    (type === 'key.submitted' && (has(superseded, data.submissionId) || has(revoked, data.credentialId))) ||
    (type === 'key.revalidate' && (!has(activeCredentials, data.credentialId) || has(revoked, data.credentialId)));

  const events = [
    ...outbox.map((r) => ({ id: r.id, type: r.event_type, tenantId: r.tenant_id, data: r.payload?.data ?? {}, createdAt: r.created_at })),
    ...driver.externalEvents.map((e) => ({ ...e, data: {}, createdAt: new Date(e.at) })),
  ];
  for (const event of events) {
    for (const consumer of CONSUMERS) {
      if (!(SUBSCRIPTIONS[consumer] as readonly string[]).includes(event.type)) continue;
      if (inbox.has(`${consumer}:${event.id}`)) continue;
      if (consumer === 'validator' && droppedByDesign(event.type, event.data)) continue;
      findings.lostEvents.push({ id: event.id, type: event.type, tenantId: event.tenantId, consumer, createdAt: event.createdAt });
    }
  }

  // Effects per credential and per tenant, from the events keyward committed.
  const activations = new Map<string, number>();
  const invalidations = new Map<string, (string | undefined)[]>();
  const alerts = new Map<string, number>();
  for (const r of outbox) {
    const { credentialId, reason } = r.payload?.data ?? {};
    if (r.event_type === 'key.activated' && credentialId !== undefined) activations.set(credentialId, (activations.get(credentialId) ?? 0) + 1);
    if (r.event_type === 'key.invalidated' && credentialId !== undefined) invalidations.set(credentialId, [...(invalidations.get(credentialId) ?? []), reason]);
    if (r.event_type === 'alert.reconnection_required') alerts.set(r.tenant_id, (alerts.get(r.tenant_id) ?? 0) + 1);
  }
  const auditActivations = new Map<string, number>();
  for (const r of await db.query<{ credential_id: string; n: string }>(
    `SELECT credential_id, count(*) AS n FROM audit_log WHERE action = 'credential.activated' AND credential_id IS NOT NULL GROUP BY credential_id`,
  )) {
    auditActivations.set(r.credential_id, Number(r.n));
  }

  for (const t of driver.tenants.values()) {
    for (const c of t.credentials.values()) {
      const a = activations.get(c.credentialId) ?? 0;
      const inv = invalidations.get(c.credentialId) ?? [];
      if (a > 1) findings.duplicateEffects.push({ tenantId: t.id, what: `${a} key.activated for credential …${c.last4}` });
      if ((auditActivations.get(c.credentialId) ?? 0) > 1) findings.duplicateEffects.push({ tenantId: t.id, what: `${auditActivations.get(c.credentialId)} audit activations for …${c.last4}` });
      if (inv.length > 1) findings.duplicateEffects.push({ tenantId: t.id, what: `${inv.length} key.invalidated (${inv.join(', ')}) for …${c.last4}` });
      if (c.activated === true && a === 0) findings.missingEffects.push({ tenantId: t.id, what: `no key.activated for …${c.last4}` });
      if (c.activated === false && a > 0) findings.missingEffects.push({ tenantId: t.id, what: `key.activated for …${c.last4}, which must never be active` });
      if (typeof c.invalidated === 'string' && c.invalidated !== 'maybe' && !inv.includes(c.invalidated)) {
        findings.missingEffects.push({ tenantId: t.id, what: `no key.invalidated(${c.invalidated}) for …${c.last4} (got ${inv.join(', ') || 'none'})` });
      }
      if (c.invalidated === null && inv.length > 0) findings.missingEffects.push({ tenantId: t.id, what: `unexpected key.invalidated(${inv.join(', ')}) for …${c.last4}` });
      if (c.invalidated === 'maybe' && a > 0 && inv.length === 0 && !(t.expected.last4 ?? []).includes(c.last4)) {
        findings.missingEffects.push({ tenantId: t.id, what: `…${c.last4} was activated and never invalidated, yet is not the tenant's key` });
      }
    }
    const alerted = alerts.get(t.id) ?? 0;
    if (alerted > t.alerts + t.maybeAlerts) findings.duplicateEffects.push({ tenantId: t.id, what: `${alerted} alerts for ${t.alerts + t.maybeAlerts} incident(s)` });
    if (alerted < t.alerts) findings.missingEffects.push({ tenantId: t.id, what: `${alerted} alerts for ${t.alerts} incident(s)` });
  }

  // Final state, through the API an operator uses, and the audit chain as intake verifies it.
  const tenants = [...driver.tenants.values()];
  for (let i = 0; i < tenants.length; i += 20) {
    await Promise.all(
      tenants.slice(i, i + 20).map(async (t) => {
        const conn = await driver.connection(t);
        if (!asPlanned(t, conn)) {
          findings.wrongState.push({
            tenantId: t.id,
            story: t.story,
            expected: `${t.expected.status}${t.expected.last4 ? ` …${t.expected.last4.join('|…')}` : ''}`,
            actual: `${conn?.status}${conn?.key?.last4 ? ` …${conn.key.last4}` : ''}${conn?.pendingSubmission ? ' (pending submission)' : ''}`,
          });
        }
        const audit = await driver.intakeUntilAnswered('GET', `/v1/tenants/${t.id}/audit`);
        if (!auditChainIntact(audit.body)) findings.brokenChains.push(t.id);
      }),
    );
  }

  // No request to Pleo with a key after its compromise was answered.
  await pleo.poll();
  const compromised = new Map<string, { tenantId: string; answeredAt: number }>();
  for (const t of tenants) for (const c of t.compromised) compromised.set(c.last4, { tenantId: t.id, answeredAt: c.answeredAt });
  for (const r of pleo.requests) {
    const c = r.credentialLast4 ? compromised.get(r.credentialLast4) : undefined;
    if (c && Date.parse(r.at) > c.answeredAt) findings.requestsAfterCompromise.push({ tenantId: c.tenantId, last4: r.credentialLast4!, at: r.at, path: r.path });
  }
  return findings;
}

/** Tenants per phase in their expected final state (needs the findings' wrong states). */
export function tenantsByPhase(driver: Driver, findings: Findings): Map<string, { total: number; ok: number }> {
  const wrong = new Set(findings.wrongState.map((w) => w.tenantId));
  const result = new Map<string, { total: number; ok: number }>();
  for (const t of driver.tenants.values()) {
    const entry = result.get(t.phase) ?? { total: 0, ok: 0 };
    entry.total += 1;
    if (!wrong.has(t.id)) entry.ok += 1;
    result.set(t.phase, entry);
  }
  return result;
}

/**
 * Retry copies kept in Postgres (when retries are scheduled there) are deleted once republished,
 * so the final dump would miss them: they are read and searched while the run goes on.
 */
export class RetryRowScanner {
  private timer?: NodeJS.Timeout;
  private busy = false;
  rowsSeen = 0;

  constructor(
    private readonly db: Database,
    private readonly scanner: CanaryScanner,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.scan(), 1_000);
  }

  async scan(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const [table] = await this.db.query<{ t: string | null }>(`SELECT to_regclass('scheduled_retries')::text AS t`);
      if (!table.t) return;
      const rows = await this.db.query<{ row: string }>('SELECT row_to_json(r)::text AS row FROM scheduled_retries r');
      this.rowsSeen += rows.length;
      if (rows.length) this.scanner.scan('retry copies in Postgres (scheduled_retries rows)', rows.map((r) => r.row).join('\n'));
    } catch {
      /* Postgres is being restarted: next round */
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
