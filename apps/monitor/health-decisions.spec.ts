import { randomUUID } from 'node:crypto';
import {
  activeCountCap,
  AuthFailureDecision,
  CompromiseSituation,
  ConnectionFacts,
  countsAgainstActive,
  decideAuthFailure,
  decideCompromise,
  decideProviderIncident,
  decideRevalidation,
  describesOldKey,
  FailureWindow,
  HealthRules,
  HealthSituation,
  isActiveKey,
  keyReplacementRecovers,
  probeReason,
  ProviderIncidentDecision,
  ProviderSignal,
  RevalidationDecision,
  Verdict,
} from './health-decisions';
import { AuthFailureBatchDecision, decideAuthFailures, SignalShare, TenantFailures } from './auth-failure-batch-decisions';

const rules: HealthRules = { failureThreshold: 3, requiredScopes: ['accounts:read', 'export-jobs:write'], providerIncidentShare: 0.5, providerIncidentMinTenants: 4 };
const active = randomUUID();
const old = randomUUID();
const incident = randomUUID();

/** A healthy row of the active key of an active connection, nothing failing. */
function situation(over: Partial<HealthSituation> = {}): HealthSituation {
  return {
    credentialId: active,
    state: 'healthy',
    reason: null,
    incidentId: null,
    alertedIncidentId: null,
    connectionStatus: 'active',
    activeCredentialId: active,
    recentlyValidated: false,
    openProviderIncidentId: null,
    ...over,
  };
}

const window = (failures: number, forbidden = 0): FailureWindow => ({ failures, forbidden });

describe('which failures count against the active key', () => {
  it.each<[string, Partial<HealthSituation>, string | null, boolean]>([
    ['a failure naming the active key', {}, active, true],
    ['a failure naming no key (the active one is meant)', {}, null, true],
    ['the old key failing after a rotation', {}, old, false],
    ['a row still describing the old key', { credentialId: old }, null, false],
    ['a disabled connection', { connectionStatus: 'disabled', activeCredentialId: null }, null, false],
    ['an uninstalled connection', { connectionStatus: 'uninstalled', activeCredentialId: null }, active, false],
  ])('%s: counts = %s', (_name, over, reported, counts) => {
    expect(countsAgainstActive(situation(over), reported)).toBe(counts);
  });

  it('starts a row afresh only when it describes an old key of an active connection', () => {
    expect(describesOldKey(situation({ credentialId: old }))).toBe(true);
    expect(describesOldKey(situation())).toBe(false);
    expect(describesOldKey(situation({ connectionStatus: 'disabled', activeCredentialId: null }))).toBe(false);
  });
});

describe('when an auth failure degrades the connection', () => {
  it.each<[string, Partial<HealthSituation>, FailureWindow, string | null, AuthFailureDecision]>([
    // Threshold: failures of the active key within the window.
    ['below the threshold', {}, window(2), null, { kind: 'counted', why: 'below_threshold' }],
    ['at the threshold', {}, window(3), null, { kind: 'breached', reason: 'auth_failures', credentialId: active, failures: 3 }],
    ['above the threshold', {}, window(7), active, { kind: 'breached', reason: 'auth_failures', credentialId: active, failures: 7 }],
    // Window: only what the window holds counts, whatever was recorded before it.
    ['a window emptied by a validation', { recentlyValidated: true }, window(0), null, { kind: 'counted', why: 'below_threshold' }],
    // First 403: lost permissions, checked at once — unless the key was just proven complete.
    ['the first 403', {}, window(1, 1), active, { kind: 'breached', reason: 'forbidden', credentialId: active, failures: 1 }],
    ['a 403 right after a good validation', { recentlyValidated: true }, window(1, 1), active, { kind: 'counted', why: 'below_threshold' }],
    ['403s reaching the threshold after a validation', { recentlyValidated: true }, window(3, 3), null, { kind: 'breached', reason: 'auth_failures', credentialId: active, failures: 3 }],
    ['401s reaching the threshold with a 403 among them', {}, window(3, 1), null, { kind: 'breached', reason: 'auth_failures', credentialId: active, failures: 3 }],
    // Incident open: once per incident, later failures only count.
    ['more failures while degraded', { state: 'degraded', incidentId: incident }, window(9), null, { kind: 'counted', why: 'incident_open' }],
    ['more failures while reconnect_required', { state: 'reconnect_required', incidentId: incident }, window(9, 2), null, { kind: 'counted', why: 'incident_open' }],
    // Provider incident: while Pleo itself fails, nobody's key is held responsible.
    ['the threshold during a provider incident', { openProviderIncidentId: randomUUID() }, window(5), null, { kind: 'suppressed_by_provider_incident' }],
    ['below the threshold during a provider incident', { openProviderIncidentId: randomUUID() }, window(1), null, { kind: 'counted', why: 'below_threshold' }],
    // Not the active key's.
    ['the old key failing, however often', {}, window(0), old, { kind: 'not_counted' }],
    ['a connection that is not active', { connectionStatus: 'disabled', activeCredentialId: null }, window(0), null, { kind: 'not_counted' }],
  ])('%s', (_name, over, counted, reported, expected) => {
    expect(decideAuthFailure({ ...situation(over), ...counted }, reported, rules)).toEqual(expected);
  });

  it('counts nothing for a tenant without a row for an active key', () => {
    expect(decideAuthFailure(undefined, null, rules)).toEqual({ kind: 'not_counted' });
  });

  it('reads the threshold from the settings', () => {
    expect(decideAuthFailure({ ...situation(), ...window(3) }, null, { ...rules, failureThreshold: 5 }).kind).toBe('counted');
    expect(decideAuthFailure({ ...situation(), ...window(1) }, null, { ...rules, failureThreshold: 1 }).kind).toBe('breached');
  });
});

describe('what a probe or revalidation outcome does', () => {
  const verdict = (outcome: Verdict['outcome'], over: Partial<Verdict> = {}): Verdict => ({ credentialId: active, outcome, scopes: rules.requiredScopes, ...over });
  const degraded = { state: 'degraded' as const, reason: 'auth_failures', incidentId: incident };

  it.each<[string, Partial<HealthSituation>, Verdict, RevalidationDecision]>([
    // Incident close: the key works.
    ['valid while degraded: recovers, the incident closes', degraded, verdict('valid'), { kind: 'healthy', recovers: true }],
    ['valid while reconnect_required (scopes granted again)', { state: 'reconnect_required', incidentId: incident }, verdict('valid'), { kind: 'healthy', recovers: true }],
    ['valid while healthy (a scheduled probe)', {}, verdict('valid'), { kind: 'healthy', recovers: false }],
    // Incident open → reconnect_required with one alert.
    [
      'invalid while degraded: alert for the open incident',
      degraded,
      verdict('invalid', { scopes: [] }),
      { kind: 'reconnect_required', reason: 'invalid_key', missingScopes: null, incidentId: incident, alerts: true },
    ],
    ['invalid on a probe of a healthy key: a new incident', {}, verdict('invalid'), { kind: 'reconnect_required', reason: 'invalid_key', missingScopes: null, incidentId: null, alerts: true }],
    [
      'invalid again for an incident already alerted',
      { state: 'reconnect_required', incidentId: incident, alertedIncidentId: incident },
      verdict('invalid'),
      { kind: 'reconnect_required', reason: 'invalid_key', missingScopes: null, incidentId: incident, alerts: false },
    ],
    [
      'insufficient scopes: the validator names what is missing',
      degraded,
      verdict('insufficient_scopes', { scopes: ['accounts:read'], missingScopes: ['export-jobs:write'] }),
      { kind: 'reconnect_required', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'], incidentId: incident, alerts: true },
    ],
    [
      'insufficient scopes: the missing ones worked out from the required ones',
      degraded,
      verdict('insufficient_scopes', { scopes: ['accounts:read'] }),
      { kind: 'reconnect_required', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'], incidentId: incident, alerts: true },
    ],
    // No verdict: ask again later; only Pleo's own failures may be a provider incident.
    ['unreachable while degraded', degraded, verdict('unreachable', { scopes: [] }), { kind: 'retry_later', reason: 'pleo_unreachable', reschedules: true, mayBeProviderIncident: true }],
    ['rate limited', {}, verdict('rate_limited', { scopes: [] }), { kind: 'retry_later', reason: 'pleo_rate_limited', reschedules: true, mayBeProviderIncident: false }],
    [
      'unreachable while reconnect_required: nothing moves',
      { state: 'reconnect_required', incidentId: incident, alertedIncidentId: incident },
      verdict('unreachable', { scopes: [] }),
      { kind: 'retry_later', reason: 'pleo_unreachable', reschedules: false, mayBeProviderIncident: false },
    ],
    // Stale: about a key that is no longer the active one.
    ['a result about the old key', degraded, verdict('invalid', { credentialId: old }), { kind: 'stale' }],
    ['a result while the row still describes the old key', { credentialId: old }, verdict('invalid'), { kind: 'stale' }],
    ['a result for a disabled connection', { connectionStatus: 'disabled', activeCredentialId: null }, verdict('valid'), { kind: 'stale' }],
  ])('%s', (_name, over, answer, expected) => {
    expect(decideRevalidation(situation(over), answer, rules)).toEqual(expected);
  });

  it('is stale for a tenant without an active key to monitor', () => {
    expect(decideRevalidation(undefined, verdict('invalid'), rules)).toEqual({ kind: 'stale' });
  });

  it.each([
    ['healthy', 'probe'],
    ['degraded', 'auth_failures'],
    ['reconnect_required', 'probe'],
  ] as const)('a scheduled probe of a %s connection asks with reason %s', (state, reason) => {
    expect(probeReason(state)).toBe(reason);
  });
});

describe('the credential lifecycle', () => {
  const connection = (over: Partial<ConnectionFacts> = {}): ConnectionFacts => ({ status: 'active', activeCredentialId: active, companyId: 'c-1', compromisedCredentialId: null, ...over });

  it('acts on activations and checks only for the active key', () => {
    expect(isActiveKey(connection(), active)).toBe(true);
    expect(isActiveKey(connection(), old)).toBe(false);
    expect(isActiveKey(connection({ status: 'disabled', activeCredentialId: null }), active)).toBe(false);
    expect(isActiveKey(undefined, active)).toBe(false);
  });

  it.each([
    [null, false],
    ['healthy', false],
    ['degraded', true],
    ['reconnect_required', true],
  ] as const)('a new key replacing a %s row announces a recovery: %s', (replaced, recovers) => {
    expect(keyReplacementRecovers(replaced)).toBe(recovers);
  });

  const disabled = (over: Partial<ConnectionFacts> = {}) => connection({ status: 'disabled', activeCredentialId: null, compromisedCredentialId: active, ...over });
  const alerted = { credentialId: active, reason: 'key_compromised', incidentId: incident, alertedIncidentId: incident };

  it.each<[string, CompromiseSituation, ReturnType<typeof decideCompromise>]>([
    ['the first disable of a compromised key alerts', { connection: disabled(), health: undefined, lastCompromisedCredentialId: null }, { kind: 'alert', credentialId: active }],
    ['a second report of the same compromise does not', { connection: disabled(), health: alerted, lastCompromisedCredentialId: active }, { kind: 'duplicate' }],
    [
      'the replacement key compromised too alerts again, naming it',
      { connection: disabled({ compromisedCredentialId: old }), health: alerted, lastCompromisedCredentialId: old },
      { kind: 'alert', credentialId: old },
    ],
    [
      'the key rotation did not name: the one it invalidated last',
      { connection: disabled({ compromisedCredentialId: null }), health: undefined, lastCompromisedCredentialId: old },
      { kind: 'alert', credentialId: old },
    ],
    [
      "no key known anywhere: the row's own",
      { connection: disabled({ compromisedCredentialId: null }), health: { ...alerted, reason: 'auth_failures' }, lastCompromisedCredentialId: null },
      { kind: 'alert', credentialId: active },
    ],
    ['a new key activated meanwhile', { connection: connection(), health: alerted, lastCompromisedCredentialId: active }, { kind: 'stale' }],
  ])('%s', (_name, s, expected) => {
    expect(decideCompromise(s)).toEqual(expected);
  });
});

describe('when failures across tenants are a provider incident', () => {
  const signal = (failing: number, unreachable = 0, activeTenants = 10) => ({ failing, unreachable, active: activeTenants });

  it.each<[string, ReturnType<typeof signal>, { affectedTenants: number } | null, ProviderIncidentDecision]>([
    ['half the active tenants failing opens one', signal(5), null, { kind: 'open', reason: 'auth_failures_across_tenants', affectedTenants: 5 }],
    ['fewer than half does not', signal(4), null, { kind: 'unchanged' }],
    ['a small fleet needs the minimum number of tenants', signal(3, 0, 4), null, { kind: 'unchanged' }],
    ['the minimum number of tenants in a small fleet opens one', signal(4, 0, 4), null, { kind: 'open', reason: 'auth_failures_across_tenants', affectedTenants: 4 }],
    ['Pleo unreachable for several tenants opens one', signal(0, 4), null, { kind: 'open', reason: 'pleo_unreachable', affectedTenants: 4 }],
    ['an open incident spreading grows', signal(8), { affectedTenants: 5 }, { kind: 'grow', affectedTenants: 8 }],
    ['an open incident no wider than before stays', signal(4), { affectedTenants: 5 }, { kind: 'unchanged' }],
    // Hysteresis: it closes under half the opening thresholds, so it does not flap.
    ['just under the opening threshold keeps it open', signal(3), { affectedTenants: 5 }, { kind: 'unchanged' }],
    ['under half the thresholds closes it', signal(2, 1), { affectedTenants: 5 }, { kind: 'close' }],
    ['unreachable tenants keep it open', signal(0, 2), { affectedTenants: 5 }, { kind: 'unchanged' }],
  ])('%s', (_name, s, open, expected) => {
    expect(decideProviderIncident(s, open, rules)).toEqual(expected);
  });
});

describe('how many active tenants the provider signal needs to count', () => {
  // Shares whose products round (0.3 × 20 is 6.000000000000001 in binary floating point), and the default.
  const shares = [0.01, 0.1, 0.3, 0.5, 0.7, 1];

  it('decides every failing count, running count, open incident and unreachable count as the full count would', () => {
    for (const providerIncidentShare of shares) {
      for (const providerIncidentMinTenants of [1, 5]) {
        const r = { ...rules, providerIncidentShare, providerIncidentMinTenants };
        for (let failing = 0; failing <= 60; failing++) {
          const cap = activeCountCap(failing, r);
          for (const activeTenants of [cap, cap + 1, cap * 2, cap + 997, 1_000_000]) {
            // A batch's running count is at most the count read after its failures.
            for (const running of [0, Math.floor(failing / 2), failing]) {
              for (const unreachable of [0, 1, providerIncidentMinTenants]) {
                for (const open of [null, { affectedTenants: 3 }]) {
                  const full = decideProviderIncident({ failing: running, unreachable, active: activeTenants }, open, r);
                  const capped = decideProviderIncident({ failing: running, unreachable, active: Math.min(activeTenants, cap) }, open, r);
                  if (JSON.stringify(capped) !== JSON.stringify(full))
                    throw new Error(`share ${providerIncidentShare}, failing ${failing}/${running}, active ${activeTenants}: ${JSON.stringify(capped)} ≠ ${JSON.stringify(full)}`);
                }
              }
            }
          }
        }
      }
    }
  });

  it('is small beside a large fleet while few fail, and one more than twice failing ÷ share', () => {
    expect(activeCountCap(7_000, { ...rules, providerIncidentShare: 0.3 })).toBe(46_668);
    expect(activeCountCap(0, rules)).toBe(2);
    // Below the cap the count is exact, so a decision near the threshold sees every active tenant.
    expect(decideProviderIncident({ failing: 5, unreachable: 0, active: Math.min(10, activeCountCap(5, rules)) }, null, rules).kind).toBe('open');
  });
});

describe('a batch of auth failures, decided as if one after the other', () => {
  const share = (failing = false, unreachable = false): SignalShare => ({ failing, unreachable });
  let n = 0;
  /** A tenant's failures in a batch: each window as it stood once that failure was recorded. */
  function tenant(tenantId: string, windows: FailureWindow[], over: Partial<HealthSituation> = {}, shares = { before: share(), after: share(true) }): TenantFailures {
    return { tenantId, situation: situation(over), failures: windows.map((w) => ({ eventId: `e${++n}`, reportedCredentialId: null, window: w })), share: shares };
  }
  const decided = (d: AuthFailureBatchDecision) => {
    if (d.kind !== 'decided') throw new Error('expected a decision');
    return d;
  };
  const outcomes = (d: AuthFailureBatchDecision, t: TenantFailures) => t.failures.map((f) => decided(d).outcomes.get(f.eventId));

  it.each<[string, () => TenantFailures[], (ts: TenantFailures[], d: AuthFailureBatchDecision) => void]>([
    [
      'the threshold crossed mid-batch degrades once, at the failure that crossed it; later ones only count',
      () => [tenant('t-1', [window(1), window(2), window(3), window(4)])],
      ([t], d) => {
        expect(outcomes(d, t)).toEqual(['counted', 'counted', 'degraded', 'counted']);
        expect(decided(d).degrades).toEqual([{ tenantId: 't-1', eventId: t.failures[2].eventId, breach: { kind: 'breached', reason: 'auth_failures', credentialId: active, failures: 3 } }]);
      },
    ],
    [
      'a first 403 among 401s degrades at the 403, for the lost permissions',
      () => [tenant('t-1', [window(1), window(2, 1), window(3, 1)])],
      ([t], d) => {
        expect(outcomes(d, t)).toEqual(['counted', 'degraded', 'counted']);
        expect(decided(d).degrades[0].breach).toMatchObject({ reason: 'forbidden', failures: 2 });
      },
    ],
    [
      'tenants are independent: one already degraded only counts, an old key is not counted, another one degrades',
      () => [tenant('t-1', [window(5), window(6)], { state: 'degraded', incidentId: incident }), tenant('t-2', [window(0), window(0)], { credentialId: old }), tenant('t-3', [window(2), window(3)])],
      ([a, b, c], d) => {
        expect([...outcomes(d, a), ...outcomes(d, b), ...outcomes(d, c)]).toEqual(['counted', 'counted', 'not_counted', 'not_counted', 'counted', 'degraded']);
        expect(decided(d).degrades.map((x) => x.tenantId)).toEqual(['t-3']);
      },
    ],
    [
      'an incident open before the batch holds every threshold back, without reading the signal',
      () => [tenant('t-1', [window(3), window(4)], { openProviderIncidentId: incident })],
      ([t], d) => expect(outcomes(d, t)).toEqual(['suppressed_by_provider_incident', 'suppressed_by_provider_incident']),
    ],
  ])('%s', (_name, arrange, check) => {
    const tenants = arrange();
    // A calm signal: 100 active tenants, a few failing.
    check(tenants, decideAuthFailures(tenants, rules, { failing: tenants.length, unreachable: 0, active: 100 }));
  });

  it('asks for the provider signal only when a threshold is reached with no incident open', () => {
    expect(decideAuthFailures([tenant('t-1', [window(1), window(2)])], rules).kind).toBe('decided');
    expect(decideAuthFailures([tenant('t-1', [window(1), window(3)])], rules)).toEqual({ kind: 'needs_signal' });
  });

  it('opens the incident at the failure where the tenants failing so far reach the threshold: those before degrade, those after are held back', () => {
    // 10 active tenants, threshold max(4, 50 %) = 5; two were failing before the batch.
    const tenants = ['t-1', 't-2', 't-3', 't-4', 't-5'].map((id) => tenant(id, [window(1, 1), window(2, 1)]));
    const signalAfter = { failing: 2 + 5, unreachable: 0, active: 10 };
    const d = decided(decideAuthFailures(tenants, rules, signalAfter));
    // t-1 sees 3 failing, t-2 4 (both degrade), t-3 5: the incident opens there.
    expect(d.degrades.map((x) => x.tenantId)).toEqual(['t-1', 't-2']);
    expect(d.opensIncident).toMatchObject({ tenantId: 't-3', eventId: tenants[2].failures[0].eventId, decision: { kind: 'open', affectedTenants: 5 }, signal: { failing: 5 } });
    expect(tenants.flatMap((t) => outcomes(d, t))).toEqual(['degraded', 'counted', 'degraded', 'counted', ...Array<string>(6).fill('suppressed_by_provider_incident')]);
  });

  it('counts a tenant already failing before the batch once, and stops counting a degraded one as unreachable', () => {
    const already = { before: share(true, true), after: share(true, true) };
    const tenants = [tenant('t-1', [window(1, 1)], {}, already), tenant('t-2', [window(1, 1)]), tenant('t-3', [window(1, 1)])];
    // Unreachable: 4 tenants (the minimum) before the batch, t-1 among them.
    const d = decided(decideAuthFailures(tenants, rules, { failing: 3, unreachable: 4, active: 100 }));
    // t-1 sees 4 unreachable: the incident opens at once, nobody degrades.
    expect(d.opensIncident).toMatchObject({ tenantId: 't-1', decision: { reason: 'pleo_unreachable' } });
    const without = decided(decideAuthFailures(tenants, rules, { failing: 3, unreachable: 3, active: 100 }));
    // With 3 unreachable, t-1 degrades and is no longer unreachable; nobody opens one.
    expect(without.degrades.map((x) => x.tenantId)).toEqual(['t-1', 't-2', 't-3']);
    expect(without.opensIncident).toBeUndefined();
  });
});

describe('a batch decided on an upper bound of the provider signal (ADR 0060)', () => {
  let seed = 20261208;
  const random = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
  let n = 0;
  const share = (failing: boolean, unreachable: boolean): SignalShare => ({ failing, unreachable });

  /** A batch of 1–5 tenants, each with 1–4 failures, healthy or degraded, failing or unreachable before it or not. */
  function batch(): TenantFailures[] {
    return Array.from({ length: 1 + random(5) }, (_, t) => {
      let failures = random(3);
      let forbidden = 0;
      const before = share(random(2) === 0, random(3) === 0);
      return {
        tenantId: `t-${t}`,
        situation: situation(random(4) === 0 ? { state: 'degraded', incidentId: incident } : {}),
        failures: Array.from({ length: 1 + random(4) }, () => {
          forbidden += random(5) === 0 ? 1 : 0;
          return { eventId: `e${++n}`, reportedCredentialId: null, window: window(++failures, forbidden) };
        }),
        share: { before, after: share(true, before.unreachable) },
      };
    });
  }

  /** The signal as the statement reads it for these counts in a fleet of `fleet` active tenants. */
  function read(failing: number, unreachable: number, fleet: number, r: HealthRules): ProviderSignal {
    const counted = Math.max(failing, unreachable) >= Math.ceil(r.providerIncidentMinTenants / 2);
    return { failing, unreachable, active: counted ? Math.min(fleet, activeCountCap(failing, r)) : 0 };
  }

  it('opens an incident wherever the signal opens one, and where it opens none decides exactly as the signal', () => {
    const seen = { same: 0, fellBack: 0 };
    for (let i = 0; i < 20_000; i++) {
      const r = { ...rules, providerIncidentShare: [0.1, 0.3, 0.5][random(3)], providerIncidentMinTenants: [1, 4, 5][random(3)] };
      const tenants = batch();
      const fleet = tenants.length + random(60);
      // Failing and unreachable after the batch: its tenants' shares and some of the other tenants'.
      const failing = tenants.length + random(fleet - tenants.length + 1);
      const unreachable = tenants.filter((t) => t.share.after.unreachable).length + random(6);
      const exact = decideAuthFailures(tenants, r, read(failing, unreachable, fleet, r));
      // The bound: rows of old keys and connections no longer active counted too.
      const bounded = decideAuthFailures(tenants, r, read(failing + random(8), unreachable + random(3), fleet, r));
      if (exact.kind !== 'decided' || bounded.kind !== 'decided') throw new Error('expected decisions');
      if (exact.opensIncident && !bounded.opensIncident) throw new Error(`batch ${i}: the signal opens an incident, its bound does not`);
      if (bounded.opensIncident) {
        seen.fellBack += 1;
        continue;
      }
      expect(bounded).toEqual(exact);
      seen.same += 1;
    }
    // Both branches are exercised: decisions taken on the bound, and bounds that open an incident (the signal is then read).
    expect(seen.same).toBeGreaterThan(1_000);
    expect(seen.fellBack).toBeGreaterThan(1_000);
  });
});
