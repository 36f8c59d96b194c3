import type { KeywardConfig } from '@keyward/config';
import type { EventData } from '@keyward/contracts';
import type { HealthState } from '@keyward/persistence';

/**
 * Where an auth failure becomes a degraded connection, a revalidation, an alert or nothing: pure
 * decisions over what the monitor read under the tenant's health-row lock. No I/O, so every rule is
 * a unit test away (`health-decisions.spec.ts`); the services only read, write and publish around them.
 */

export const HEALTH_STATES: HealthState[] = ['healthy', 'degraded', 'reconnect_required'];

export interface HealthRules {
  /** Failures of the active key in the window that degrade the connection. */
  failureThreshold: number;
  requiredScopes: string[];
  /** Share of the active tenants failing at once that means Pleo, not their keys, is failing. */
  providerIncidentShare: number;
  providerIncidentMinTenants: number;
}

export function healthRules(config: KeywardConfig): HealthRules {
  const { failureThreshold, providerIncidentShare, providerIncidentMinTenants } = config.monitor;
  return { failureThreshold, requiredScopes: config.pleo.requiredScopes, providerIncidentShare, providerIncidentMinTenants };
}

/** A tenant's health row, locked, with the lifecycle facts from `connections` it is judged by. */
export interface HealthSituation {
  /** The credential the row describes; it counts only while it is the active one. */
  credentialId: string;
  state: HealthState;
  reason: string | null;
  /** The incident in progress (set when the connection degraded), and the one already alerted. */
  incidentId: string | null;
  alertedIncidentId: string | null;
  connectionStatus: 'not_connected' | 'active' | 'disabled' | 'uninstalled';
  activeCredentialId: string | null;
  /** The key was proven to work within the window, so a lone 403 is not enough to degrade it. */
  recentlyValidated: boolean;
  openProviderIncidentId: string | null;
}

/**
 * The row describes a key that is no longer the active one (the activation not seen yet, or the
 * state set up by rotation before the monitor ran): it is started afresh for the active key first.
 */
export function describesOldKey(s: HealthSituation): boolean {
  return s.connectionStatus === 'active' && s.credentialId !== s.activeCredentialId;
}

/**
 * The failures that count, as the repository counted them: those recorded as counting against the
 * active key, observed after the latest of now − window, the key's activation and last validation.
 */
export interface FailureWindow {
  failures: number;
  /** Of which 403s. */
  forbidden: number;
}

/**
 * Whether a reported failure counts against the tenant's active key. The old key failing after a
 * rotation is expected: kept on record, never held against the new key. The one-statement hot
 * path (`failure-window.sql.ts`) applies the same rule in SQL; its spec checks they agree (ADR 0029).
 */
export function countsAgainstActive(s: HealthSituation, reportedCredentialId: string | null): boolean {
  return s.connectionStatus === 'active' && s.credentialId === s.activeCredentialId && (reportedCredentialId === null || reportedCredentialId === s.activeCredentialId);
}

export type DegradeReason = 'auth_failures' | 'forbidden';

export type AuthFailureDecision =
  | { kind: 'not_counted' }
  /** Below the threshold, or an incident is already open: counted, not announced again. */
  | { kind: 'counted'; why: 'below_threshold' | 'incident_open' }
  | { kind: 'suppressed_by_provider_incident' }
  /**
   * The threshold is reached: the connection degrades and the key is revalidated — unless the
   * failures are Pleo's own (`decideProviderIncident` opens an incident instead).
   */
  | { kind: 'breached'; reason: DegradeReason; credentialId: string; failures: number };

/** `counted`: the tenant's row and its failure window after this failure was recorded; undefined when it has none. */
export function decideAuthFailure(counted: (HealthSituation & FailureWindow) | undefined, reportedCredentialId: string | null, rules: HealthRules): AuthFailureDecision {
  if (!counted || !countsAgainstActive(counted, reportedCredentialId)) return { kind: 'not_counted' };
  // Once per incident: a degraded or reconnect_required connection only counts.
  if (counted.state !== 'healthy') return { kind: 'counted', why: 'incident_open' };
  const overThreshold = counted.failures >= rules.failureThreshold;
  // A 403 means lost permissions, unless the key was just proven complete (then it needs the count).
  const firstForbidden = counted.forbidden > 0 && !counted.recentlyValidated;
  if (!overThreshold && !firstForbidden) return { kind: 'counted', why: 'below_threshold' };
  if (counted.openProviderIncidentId) return { kind: 'suppressed_by_provider_incident' };
  return { kind: 'breached', reason: overThreshold ? 'auth_failures' : 'forbidden', credentialId: counted.credentialId, failures: counted.failures };
}

/** What revalidating the active key found, as the validator recorded it. */
export type Verdict = EventData<'key.revalidated'>;

export type ReconnectReason = 'invalid_key' | 'insufficient_scopes' | 'key_compromised';

export type RevalidationDecision =
  /** A result for a credential that is no longer the active one changes nothing. */
  | { kind: 'stale' }
  /** The key works: healthy, and the incident (if any) closes. */
  | { kind: 'healthy'; recovers: boolean }
  | {
      kind: 'reconnect_required';
      reason: Exclude<ReconnectReason, 'key_compromised'>;
      missingScopes: string[] | null;
      /** The incident this belongs to; null: a new one starts. */
      incidentId: string | null;
      /** One alert per incident, however many failures or revalidations follow. */
      alerts: boolean;
    }
  /**
   * Pleo did not answer, or rate-limited this credential: no verdict. The state stays; the key is
   * asked again later unless the customer already has to reconnect. Only Pleo's own failures
   * count towards a provider incident: one customer's 429s say nothing about the other tenants.
   */
  | { kind: 'retry_later'; reason: 'pleo_unreachable' | 'pleo_rate_limited'; reschedules: boolean; mayBeProviderIncident: boolean };

export function decideRevalidation(s: HealthSituation | undefined, verdict: Verdict, rules: HealthRules): RevalidationDecision {
  const { credentialId } = verdict;
  if (!s || s.connectionStatus !== 'active' || s.credentialId !== credentialId || s.activeCredentialId !== credentialId) return { kind: 'stale' };
  switch (verdict.outcome) {
    case 'valid':
      return { kind: 'healthy', recovers: s.state !== 'healthy' };
    case 'invalid':
      return reconnect(s, 'invalid_key', null);
    case 'insufficient_scopes': {
      const granted = new Set(verdict.scopes);
      const missing = verdict.missingScopes?.length ? verdict.missingScopes : rules.requiredScopes.filter((scope) => !granted.has(scope));
      return reconnect(s, 'insufficient_scopes', missing);
    }
    case 'unreachable':
    case 'rate_limited': {
      const reschedules = s.state !== 'reconnect_required';
      const reason = verdict.outcome === 'unreachable' ? 'pleo_unreachable' : 'pleo_rate_limited';
      return { kind: 'retry_later', reason, reschedules, mayBeProviderIncident: reschedules && reason === 'pleo_unreachable' };
    }
  }
}

function reconnect(s: HealthSituation, reason: Exclude<ReconnectReason, 'key_compromised'>, missingScopes: string[] | null): RevalidationDecision {
  const alreadyAlerted = s.incidentId !== null && s.alertedIncidentId === s.incidentId;
  return { kind: 'reconnect_required', reason, missingScopes, incidentId: s.incidentId, alerts: !alreadyAlerted };
}

/** Lifecycle facts of a tenant from rotation's `connections` row. */
export interface ConnectionFacts {
  status: string;
  activeCredentialId: string | null;
  companyId: string | null;
  /** For a connection disabled by a compromise: the credential rotation disabled it for. */
  compromisedCredentialId: string | null;
}

/** Events about a key (activation, a requested check) act only while it is the tenant's active key. */
export function isActiveKey(connection: ConnectionFacts | undefined, credentialId: string): boolean {
  return connection?.status === 'active' && connection.activeCredentialId === credentialId;
}

/** A new active key closes the old key's incident: whoever was told it failed hears it recovered. */
export function keyReplacementRecovers(replacedState: HealthState | null): boolean {
  return replacedState !== null && replacedState !== 'healthy';
}

export interface CompromiseSituation {
  connection: ConnectionFacts | undefined;
  /** The tenant's health row, locked, if it has one. */
  health: Pick<HealthSituation, 'credentialId' | 'reason' | 'incidentId' | 'alertedIncidentId'> | undefined;
  /** The credential rotation invalidated as compromised most recently, if any. */
  lastCompromisedCredentialId: string | null;
}

/** A `connection.disabled` is acted on only while the connection is disabled: a new key may have been activated meanwhile. */
export function stillDisabled(connection: ConnectionFacts | undefined): connection is ConnectionFacts & { status: 'disabled' } {
  return connection?.status === 'disabled';
}

export type CompromiseDecision = { kind: 'stale' | 'duplicate' } | { kind: 'alert'; credentialId: string | null };

/**
 * One reconnection alert per compromised credential, whatever number of disable events arrive —
 * and one for each key compromised in turn, even when the monitor never saw the later key active
 * (the row then still describes the earlier one).
 */
export function decideCompromise(s: CompromiseSituation): CompromiseDecision {
  const { connection, health } = s;
  if (!stillDisabled(connection)) return { kind: 'stale' };
  // Rotation names the compromised credential on the connection it disabled.
  const credentialId = connection.compromisedCredentialId ?? connection.activeCredentialId ?? s.lastCompromisedCredentialId ?? health?.credentialId ?? null;
  const alreadyAlerted = health?.reason === 'key_compromised' && health.incidentId !== null && health.alertedIncidentId === health.incidentId;
  if (alreadyAlerted && (credentialId === null || health.credentialId === credentialId)) return { kind: 'duplicate' };
  return { kind: 'alert', credentialId };
}

export interface ProviderSignal {
  /** Active tenants with a failure of their active credential in the window. */
  failing: number;
  /** Tenants whose last revalidation in the window found Pleo unreachable. */
  unreachable: number;
  /**
   * Active tenants, counted only as far as a decision depends on them: up to
   * `activeCountCap(failing)` (more cannot change a decision on these counts), and 0 while
   * neither count reaches half the smallest opening threshold.
   */
  active: number;
}

export type ProviderIncidentReason = 'auth_failures_across_tenants' | 'pleo_unreachable';

export type ProviderIncidentDecision =
  | { kind: 'open'; reason: ProviderIncidentReason; affectedTenants: number }
  | { kind: 'close' }
  /** The incident stays open and now affects more tenants than it did. */
  | { kind: 'grow'; affectedTenants: number }
  | { kind: 'unchanged' };

/** Tenants failing at once that mean Pleo, not the keys, is the problem. */
export function providerFailingThreshold(active: number, rules: HealthRules): number {
  return Math.max(rules.providerIncidentMinTenants, Math.ceil(rules.providerIncidentShare * active));
}

/**
 * How many active tenants are worth counting when `failing` tenants fail: from this many on, the
 * threshold is above twice `failing`, so `failing` (or fewer, as a batch's running count) neither
 * opens an incident nor keeps one from calming down — the same decisions as with the full count.
 * Counting up to it keeps the signal's cost to the failing tenants, not all tenants (ADR 0047).
 * `ProviderIncidentRepository.signal` computes the same in SQL; a spec checks they agree.
 */
export function activeCountCap(failing: number, rules: HealthRules): number {
  // + 2, not + 1: the product may round down by an ulp.
  return Math.floor((2 * failing) / rules.providerIncidentShare) + 2;
}

/**
 * Tells a Pleo-side incident from many customers' keys failing. With none open: opens one when a
 * share of the active tenants fail within the window, or revalidations find Pleo unreachable for
 * several. An open one closes with hysteresis (under half the opening thresholds), so it does not
 * flap; while it is open, failure counts move nobody (`decideAuthFailure`).
 */
export function decideProviderIncident(signal: ProviderSignal, open: { affectedTenants: number } | null, rules: HealthRules): ProviderIncidentDecision {
  const threshold = providerFailingThreshold(signal.active, rules);
  if (!open) {
    if (signal.failing >= threshold) return { kind: 'open', reason: 'auth_failures_across_tenants', affectedTenants: signal.failing };
    if (signal.unreachable >= rules.providerIncidentMinTenants) return { kind: 'open', reason: 'pleo_unreachable', affectedTenants: signal.unreachable };
    return { kind: 'unchanged' };
  }
  const calm = signal.failing < Math.ceil(threshold / 2) && signal.unreachable < Math.ceil(rules.providerIncidentMinTenants / 2);
  if (calm) return { kind: 'close' };
  const current = Math.max(signal.failing, signal.unreachable);
  return current > open.affectedTenants ? { kind: 'grow', affectedTenants: current } : { kind: 'unchanged' };
}

/** Why a scheduled probe asks: a degraded connection is still waiting for its revalidation. */
export function probeReason(state: HealthState): 'auth_failures' | 'probe' {
  return state === 'degraded' ? 'auth_failures' : 'probe';
}
