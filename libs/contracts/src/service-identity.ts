import type { BrokerRole } from './subscriptions';

/** keyward's own services: every broker role but the integration's other backends. */
export type KeywardService = Exclude<BrokerRole, 'integration'>;

export interface ServiceIdentity<S extends KeywardService = KeywardService> {
  /** The service's name: its process, image and broker user. */
  readonly name: S;
  /** The `producer` of every event the service publishes. */
  readonly producer: S;
  /** Its inbox consumer and the subscriber its queue and retries are named for. */
  readonly consumer: S;
  /** The `actor` of the audit entries it writes on its own account. */
  readonly actor: `service:${S}`;
}

/** One name per service, used as its process name, producer, consumer and actor alike. */
export function serviceIdentity<S extends KeywardService>(service: S): ServiceIdentity<S> {
  return { name: service, producer: service, consumer: service, actor: `service:${service}` };
}
