import type { Stack } from './chaos';
import type { Findings } from './evidence';
import type { Profile } from './profiles';

export interface PhaseRecord {
  name: string;
  fault: string;
  startedAt: number;
  /** When the fault was lifted (broker back, Pleo healthy, process restarted). */
  liftedAt: number;
  /** When every tenant of the phase was as planned and the outbox drained. */
  recoveredAt?: number;
  endedAt: number;
  notes: string[];
  counters: { retried: number; parked: number; retryCopies: number; parkedCopies: number };
}

interface Row {
  phase: string;
  published: number;
  consumed: number;
  retried: number;
  parked: number;
  tenants: string;
  lost: number;
  duplicates: number;
  afterCompromise: number;
  leaks: number;
  recovery: string;
}

const within = (at: number, p: PhaseRecord) => at >= p.startedAt && at < p.endedAt;

/** Prints the per-fault and total table and the checks; returns the exit code (1 if any count is off). */
export async function printReport(input: {
  stack: Stack;
  profile: Profile;
  findings: Findings;
  parkedNow: number;
  durationMs: number;
  byPhase: Map<string, { total: number; ok: number }>;
  say: (text: string) => void;
}): Promise<number> {
  const { stack, findings, byPhase } = input;
  const outbox = (await stack.db.query<{ at: Date }>('SELECT created_at AS at FROM outbox')).map((r) => r.at.getTime());
  const inbox = (await stack.db.query<{ at: Date }>('SELECT processed_at AS at FROM inbox')).map((r) => r.at.getTime());
  const external = stack.driver.externalEvents.map((e) => e.at);
  const phaseOfTenant = new Map([...stack.driver.tenants.values()].map((t) => [t.id, t.phase]));

  // Tenants whose only witness is the probe schedule are judged at the end: a row without a window.
  const unphased = [...byPhase.keys()].filter((name) => !stack.phases.some((p) => p.name === name));
  const phases: PhaseRecord[] = [
    ...stack.phases,
    ...unphased.map((name) => ({
      name,
      fault: 'judged after the run',
      startedAt: 0,
      liftedAt: 0,
      recoveredAt: 0,
      endedAt: 0,
      notes: [],
      counters: { retried: 0, parked: 0, retryCopies: 0, parkedCopies: 0 },
    })),
  ];
  const rows: Row[] = phases.map((p) => {
    const tenants = byPhase.get(p.name) ?? { total: 0, ok: 0 };
    return {
      phase: p.name,
      published: outbox.filter((at) => within(at, p)).length + external.filter((at) => within(at, p)).length,
      consumed: inbox.filter((at) => within(at, p)).length,
      retried: p.counters.retried,
      parked: p.counters.parked,
      tenants: `${tenants.ok}/${tenants.total}`,
      lost: findings.lostEvents.filter((e) => within(e.createdAt.getTime(), p)).length,
      duplicates: findings.duplicateEffects.filter((d) => phaseOfTenant.get(d.tenantId) === p.name).length,
      afterCompromise: findings.requestsAfterCompromise.filter((r) => phaseOfTenant.get(r.tenantId) === p.name).length,
      leaks: stack.scanner.leaks.filter((l) => l.phase === p.name).length,
      recovery: p.endedAt === 0 ? '–' : p.recoveredAt ? `${((p.recoveredAt - p.liftedAt) / 1000).toFixed(1)} s` : 'never',
    };
  });
  const totalTenants = [...byPhase.values()].reduce((a, b) => ({ total: a.total + b.total, ok: a.ok + b.ok }), { total: 0, ok: 0 });
  const total: Row = {
    phase: 'TOTAL',
    published: outbox.length + external.length,
    consumed: inbox.length,
    retried: rows.reduce((s, r) => s + r.retried, 0),
    parked: rows.reduce((s, r) => s + r.parked, 0),
    tenants: `${totalTenants.ok}/${totalTenants.total}`,
    lost: findings.lostEvents.length,
    duplicates: findings.duplicateEffects.length,
    afterCompromise: findings.requestsAfterCompromise.length,
    leaks: stack.scanner.leaks.length,
    recovery: stack.phases.every((p) => p.recoveredAt) ? `max ${Math.max(0, ...stack.phases.map((p) => (p.recoveredAt! - p.liftedAt) / 1000)).toFixed(1)} s` : 'never',
  };

  const header = ['fault', 'published', 'consumed', 'retried', 'parked', 'tenants as planned', 'lost', 'dup effects', 'Pleo calls after compromise', 'canary leaks', 'recovery'];
  const cells = [...rows, total].map((r) => [r.phase, r.published, r.consumed, r.retried, r.parked, r.tenants, r.lost, r.duplicates, r.afterCompromise, r.leaks, r.recovery].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join(' | ')} |`;
  const out: string[] = ['', line(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...cells.map(line), ''];
  for (const p of stack.phases) out.push(`  ${p.name}: ${p.fault}${p.notes.length ? `\n      ${p.notes.join('\n      ')}` : ''}`);

  const scanned = [...stack.scanner.scanned].map(([place, chars]) => `${place} ${(chars / 1024).toFixed(0)} KiB`);
  const checks: [string, boolean, string][] = [
    ['lost events', findings.lostEvents.length === 0, String(findings.lostEvents.length)],
    ['outbox rows never published', findings.unpublished === 0, String(findings.unpublished)],
    ['parked events at the end', input.parkedNow === 0, String(input.parkedNow)],
    ['duplicate effects (activation, invalidation, alert, audit)', findings.duplicateEffects.length === 0, String(findings.duplicateEffects.length)],
    ['missing effects (activation, invalidation, alert)', findings.missingEffects.length === 0, String(findings.missingEffects.length)],
    ['tenants in the expected final state', findings.wrongState.length === 0, `${totalTenants.ok}/${totalTenants.total}`],
    ['audit chains intact', findings.brokenChains.length === 0, `${totalTenants.total - findings.brokenChains.length}/${totalTenants.total}`],
    ['Pleo requests with a key after its compromise was answered', findings.requestsAfterCompromise.length === 0, String(findings.requestsAfterCompromise.length)],
    ['sandbox request log complete (no gaps)', stack.pleo.gaps === 0, `${stack.pleo.requests.length} requests, ${stack.pleo.gaps} missed`],
    ['canary leaks (plain and base64)', stack.scanner.leaks.length === 0, `${stack.scanner.leaks.length} in ${stack.scanner.size} keys`],
    ['every fault recovered', stack.phases.every((p) => p.recoveredAt), `${stack.phases.filter((p) => p.recoveredAt).length}/${stack.phases.length}`],
    ['suite steps and shutdowns as required', stack.failures.length === 0, String(stack.failures.length)],
  ];
  out.push('', 'Checks:');
  for (const [what, ok, value] of checks) out.push(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${value}`);
  out.push(`  searched: ${scanned.join('; ')}`);
  out.push(
    `  messages seen on the firehose: ${stack.tap.counts.published} published, ${stack.tap.counts.delivered} delivered, ${stack.tap.counts.retryCopies} retry copies, ${stack.tap.counts.parkedCopies} parked copies`,
  );

  const show = <T>(title: string, items: T[], fmt: (x: T) => string) => {
    if (!items.length) return;
    out.push(`  ${title} (${items.length}${items.length > 15 ? ', first 15' : ''}):`);
    for (const x of items.slice(0, 15)) out.push(`    ${fmt(x)}`);
  };
  show('lost', findings.lostEvents, (e) => `${e.type} ${e.id} for ${e.consumer}, tenant ${e.tenantId}, committed ${e.createdAt.toISOString()}`);
  show('duplicate effects', findings.duplicateEffects, (d) => `${d.tenantId}: ${d.what}`);
  show('missing effects', findings.missingEffects, (d) => `${d.tenantId}: ${d.what}`);
  show('wrong final state', findings.wrongState, (w) => `${w.tenantId} [${w.story}]: expected ${w.expected}, is ${w.actual}`);
  show('broken audit chains', findings.brokenChains, (t) => t);
  show('requests after compromise', findings.requestsAfterCompromise, (r) => `${r.tenantId} …${r.last4} ${r.path} at ${r.at}`);
  show('leaks', stack.scanner.leaks, (l) => `${l.form} …${l.last4} in ${l.place} during ${l.phase}`);
  show('suite failures', stack.failures, (f) => f);

  const failed = checks.filter(([, ok]) => !ok).length;
  out.push('', `${input.profile.name} profile: ${totalTenants.total} tenants, ${(input.durationMs / 60_000).toFixed(1)} min. ${failed ? `${failed} check(s) FAILED` : 'All checks passed.'}`);
  process.stdout.write(`${out.join('\n')}\n`);
  process.stdout.write(
    `CHAOS-SUMMARY ${JSON.stringify({ profile: input.profile.name, tenants: totalTenants.total, rows: [...rows, total], failedChecks: checks.filter(([, ok]) => !ok).map(([w]) => w) })}\n`,
  );
  return failed ? 1 : 0;
}
