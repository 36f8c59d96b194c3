import { BROKER_ROLES } from '@keyward/contracts';
import { BrokerUser, setupBroker, userFromUrl } from '@keyward/messaging';

/**
 * npm run broker:setup — one RabbitMQ user per service, allowed to publish only the events it
 * owns (ADR 0015), queue limits as policies (ADR 0016), and the topology. Idempotent.
 *
 *   AMQP_URL                 an administrator of the vhost (declares the topology)
 *   AMQP_URL_<ROLE>          each service's own URL (INTAKE, VALIDATOR, ROTATION, MONITOR, GATEWAY,
 *                            INTEGRATION): its user and password are created or updated from it
 *   KEYWARD_AMQP_PREFIX      as the services (default keyward)
 *   KEYWARD_RABBITMQCTL      how to run rabbitmqctl (default "rabbitmqctl"; e.g.
 *                            "kubectl exec -i rabbitmq-0 -- rabbitmqctl")
 *   KEYWARD_RABBITMQ_MANAGEMENT_URL  instead of rabbitmqctl: the management API, e.g.
 *                            https://admin:pw@b-xxxx.mq.eu-west-1.amazonaws.com (Amazon MQ)
 */
async function main(): Promise<void> {
  const adminUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';
  const prefix = process.env.KEYWARD_AMQP_PREFIX ?? 'keyward';
  const vhost = userFromUrl('integration', adminUrl.replace(/^(amqps?:\/\/)(?![^/]*@)/, '$1x:x@')).vhost;
  const users: BrokerUser[] = [];
  for (const role of BROKER_ROLES) {
    const url = process.env[`AMQP_URL_${role.toUpperCase()}`];
    if (!url) {
      console.warn(`AMQP_URL_${role.toUpperCase()} is not set: no broker user for ${role}`);
      continue;
    }
    const user = userFromUrl(role, url);
    if (user.vhost !== vhost) throw new Error(`AMQP_URL_${role.toUpperCase()} names vhost "${user.vhost}", AMQP_URL "${vhost}"`);
    users.push(user);
  }
  const rabbitmqctl = (process.env.KEYWARD_RABBITMQCTL ?? 'rabbitmqctl').split(' ').filter(Boolean);
  const managementUrl = process.env.KEYWARD_RABBITMQ_MANAGEMENT_URL || undefined;
  const result = await setupBroker({ adminUrl, vhost, prefix, users, rabbitmqctl, managementUrl });
  console.log(JSON.stringify({ vhost, prefix, users: users.map((u) => `${u.role}:${u.username}`), ...result }));
}

main().catch((error) => {
  console.error(String((error as Error)?.message ?? error));
  process.exit(1);
});
