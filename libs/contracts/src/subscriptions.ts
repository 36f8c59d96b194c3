import { EventType } from './events';

/**
 * Which queue takes which events: the topology every service declares at start, so an event
 * is never unroutable because its consumer has not started yet. `notifications` is the queue
 * the integration's other backends read alerts and lifecycle changes from.
 */
export const SUBSCRIPTIONS = {
  validator: ['key.submitted', 'key.revalidate'],
  rotation: ['key.validated', 'key.rejected', 'key.compromised', 'connection.uninstalled'],
  monitor: ['auth.failed', 'connection.check_requested', 'key.revalidated', 'key.activated', 'key.invalidated', 'connection.disabled', 'connection.uninstalled'],
  notifications: [
    'alert.reconnection_required',
    'provider.degraded',
    'provider.recovered',
    'connection.degraded',
    'connection.recovered',
    'connection.disabled',
    'connection.uninstalled',
    'key.activated',
    'key.invalidated',
  ],
} as const satisfies Record<string, readonly EventType[]>;

export type Subscriber = keyof typeof SUBSCRIPTIONS;

/**
 * Who may publish which events: each service the events it owns (docs/architecture.md), and the
 * integration's other backends `auth.failed` only. The broker setup turns this into topic
 * permissions per broker user (ADR 0015).
 */
export const PUBLISHERS = {
  intake: ['key.submitted', 'key.compromised', 'connection.uninstalled', 'connection.check_requested'],
  validator: ['key.validated', 'key.rejected', 'key.revalidated'],
  rotation: ['key.activated', 'key.invalidated', 'connection.disabled'],
  monitor: ['key.revalidate', 'connection.degraded', 'connection.recovered', 'alert.reconnection_required', 'provider.degraded', 'provider.recovered'],
  gateway: ['auth.failed'],
  integration: ['auth.failed'],
} as const satisfies Record<string, readonly EventType[]>;

export type BrokerRole = keyof typeof PUBLISHERS;
export const BROKER_ROLES = Object.keys(PUBLISHERS) as BrokerRole[];
