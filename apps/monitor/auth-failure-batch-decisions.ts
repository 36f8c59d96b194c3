import { AuthFailureDecision, decideAuthFailure, decideProviderIncident, FailureWindow, HealthRules, HealthSituation, ProviderIncidentDecision, ProviderSignal } from './health-decisions';

/**
 * A batch of auth failures decided together (ADR 0035), composed from the single decisions in
 * `health-decisions.ts`: each failure gets exactly the answer it would get alone, in order.
 */

/** What one tenant adds to the provider signal (`ProviderSignal`): a failure in the window, Pleo found unreachable. */
export interface SignalShare {
  failing: boolean;
  unreachable: boolean;
}

/**
 * One tenant's auth failures of a batch, as the repository recorded them under the tenant's lock:
 * its situation before the batch, and each failure with the window as it stood once that failure
 * was recorded (in the order they are decided: observed, then arrived).
 */
export interface TenantFailures {
  tenantId: string;
  situation: HealthSituation;
  failures: { eventId: string; reportedCredentialId: string | null; window: FailureWindow }[];
  /** The tenant's share of the provider signal before the batch, and once its failures were recorded. */
  share: { before: SignalShare; after: SignalShare };
}

type AuthFailureOutcome = 'not_counted' | 'counted' | 'degraded' | 'suppressed_by_provider_incident';

export type AuthFailureBatchDecision =
  /** A threshold was reached with no incident open: ask again with the provider signal. */
  | { kind: 'needs_signal' }
  | {
      kind: 'decided';
      /** By event id. */
      outcomes: Map<string, AuthFailureOutcome>;
      degrades: { tenantId: string; eventId: string; breach: Extract<AuthFailureDecision, { kind: 'breached' }> }[];
      /** The failure at which the failures across tenants became a provider incident, if one did. */
      opensIncident?: { tenantId: string; eventId: string; decision: Extract<ProviderIncidentDecision, { kind: 'open' }>; signal: ProviderSignal };
    };

/**
 * `decideAuthFailure` for a batch: tenant by tenant in the given (lock) order, each tenant's
 * failures in order, exactly as if they were decided one after the other — once a tenant degrades
 * its later failures only count, and once an incident opens nobody else degrades. At each threshold
 * reached with no incident open, the provider signal is what it would have been at that failure:
 * the tenants before it with their failures recorded (and degraded ones no longer unreachable), the
 * tenants after it as they were. `signalAfter` is the signal read once all the batch's failures were
 * recorded; without it, a batch that needs it answers `needs_signal`.
 */
export function decideAuthFailures(tenants: TenantFailures[], rules: HealthRules, signalAfter?: ProviderSignal): AuthFailureBatchDecision {
  const outcomes = new Map<string, AuthFailureOutcome>();
  const degrades: Extract<AuthFailureBatchDecision, { kind: 'decided' }>['degrades'] = [];
  let opensIncident: Extract<AuthFailureBatchDecision, { kind: 'decided' }>['opensIncident'];
  // The signal as it stood before any of the batch's failures; each tenant's share changes on its turn.
  let signal = signalAfter && tenants.reduce((s, t) => shift(s, t.share.after, t.share.before), signalAfter);
  for (const t of tenants) {
    if (signal) signal = shift(signal, t.share.before, t.share.after);
    let state = t.situation.state;
    for (const f of t.failures) {
      const openProviderIncidentId = opensIncident ? OPENED_IN_THIS_BATCH : t.situation.openProviderIncidentId;
      const decision = decideAuthFailure({ ...t.situation, state, openProviderIncidentId, ...f.window }, f.reportedCredentialId, rules);
      if (decision.kind !== 'breached') {
        outcomes.set(f.eventId, decision.kind);
        continue;
      }
      if (!signal) return { kind: 'needs_signal' };
      const provider = decideProviderIncident(signal, null, rules);
      if (provider.kind === 'open') {
        opensIncident = { tenantId: t.tenantId, eventId: f.eventId, decision: provider, signal };
        outcomes.set(f.eventId, 'suppressed_by_provider_incident');
        continue;
      }
      degrades.push({ tenantId: t.tenantId, eventId: f.eventId, breach: decision });
      outcomes.set(f.eventId, 'degraded');
      state = 'degraded';
      // A degraded row's reason is no longer "Pleo unreachable".
      if (t.share.after.unreachable) signal = { ...signal, unreachable: signal.unreachable - 1 };
    }
  }
  return { kind: 'decided', outcomes, degrades, opensIncident };
}

/** Stands for the incident a batch opens: its id is known once it is written. */
const OPENED_IN_THIS_BATCH = 'opened-in-this-batch';

/** The signal with one tenant's share moved from `from` to `to`. */
function shift(signal: ProviderSignal, from: SignalShare, to: SignalShare): ProviderSignal {
  return {
    ...signal,
    failing: signal.failing - Number(from.failing) + Number(to.failing),
    unreachable: signal.unreachable - Number(from.unreachable) + Number(to.unreachable),
  };
}
