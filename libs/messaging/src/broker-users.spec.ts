import { randomBytes } from 'node:crypto';
import { connect, ChannelModel } from 'amqplib';
import { BROKER_ROLES, BrokerRole, createEvent, EVENT_TYPES, EventType, PUBLISHERS } from '@keyward/contracts';
import { captureLogs, eventually, PrivateBroker, startPrivateBroker } from '@keyward/testing';
import { AmqpConnection } from './amqp-connection';
import { BrokerUser, runRabbitmqctl, setupBroker } from './broker-users';
import { DELIVERY_LIMIT, REDELIVERY_ROUTES, TopologyNames } from './topology';

/**
 * `npm run broker:setup` against a real RabbitMQ node of this test's own (a private node: adding
 * and deleting a vhost on the shared broker stalled every other suite's connections for minutes
 * on a loaded machine), in a vhost and with users of this test's own: each service's user may publish exactly the
 * events it owns, and only into its own queues (security review finding 7, ADR 0015); queue
 * limits reach queues an older version declared, through policies (finding 3, ADR 0016).
 */
describe('broker users and permissions', () => {
  const id = randomBytes(4).toString('hex');
  const vhost = `kwtest-${id}`;
  const prefix = 'keyward';
  const names = new TopologyNames(prefix);
  let broker: PrivateBroker;
  let rabbitmqctl: string[];
  const users: BrokerUser[] = BROKER_ROLES.map((role) => ({ role, username: `kwtest-${id}-${role}`, password: randomBytes(12).toString('hex') }));
  const admin: BrokerUser = { role: 'integration', username: `kwtest-${id}-admin`, password: randomBytes(12).toString('hex') };
  const url = (u: { username: string; password: string }) => `amqp://${u.username}:${u.password}@127.0.0.1:${broker.port}/${encodeURIComponent(vhost)}`;
  const userOf = (role: BrokerRole) => users.find((u) => u.role === role)!;
  const open: ChannelModel[] = [];
  const as = async (role: BrokerRole | 'admin') => {
    const model = await connect(url(role === 'admin' ? admin : userOf(role)));
    model.on('error', () => undefined);
    open.push(model);
    return model;
  };

  beforeAll(async () => {
    broker = await startPrivateBroker({ name: 'kwusers' });
    rabbitmqctl = ['rabbitmqctl', '-n', broker.nodeName];
    // The test's administrator: full rights in this vhost only (production brings its own).
    await runRabbitmqctl(rabbitmqctl, ['add_vhost', vhost]);
    await runRabbitmqctl(rabbitmqctl, ['add_user', admin.username, admin.password]);
    await runRabbitmqctl(rabbitmqctl, ['set_permissions', '-p', vhost, admin.username, '.*', '.*', '.*']);
    const adminModel = await connect(url(admin));
    const channel = await adminModel.createChannel();
    // As an older version left them: notifications dead-letters into its parked queue, no bound.
    await channel.assertQueue(names.queue('notifications'), {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': names.deadLetterExchange, 'x-dead-letter-routing-key': 'notifications.parked', 'x-delivery-limit': DELIVERY_LIMIT },
    });
    await channel.assertExchange(names.deadLetterExchange, 'direct', { durable: true });
    await channel.assertQueue(names.parkedQueue('notifications'), { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await channel.bindQueue(names.parkedQueue('notifications'), names.deadLetterExchange, 'notifications.parked');
    await adminModel.close();

    const options = { adminUrl: url(admin), vhost, prefix, users, rabbitmqctl, retention: { maxLength: 2, ttlMs: 600_000 } };
    await setupBroker(options);
    // Twice: the step runs after every release.
    await setupBroker(options);
  }, 180_000);

  afterAll(async () => {
    for (const model of open) await model.close().catch(() => undefined);
    await broker?.shutdown();
  }, 120_000);

  /** Publishes with confirms; 'refused' when the broker closes the channel with ACCESS_REFUSED. */
  async function tryPublish(model: ChannelModel, exchange: string, routingKey: string): Promise<'ok' | 'refused'> {
    const channel = await model.createConfirmChannel();
    let refused = false;
    channel.on('error', (e: Error) => (refused = refused || /ACCESS_REFUSED/.test(e.message)));
    try {
      channel.publish(exchange, routingKey, Buffer.from('{}'), { persistent: true });
      await channel.waitForConfirms();
      await channel.close();
      return 'ok';
    } catch {
      await eventually(() => refused, 2_000, 'the refusal');
      return 'refused';
    }
  }

  it.each(BROKER_ROLES)('%s may publish exactly the events it owns', async (role) => {
    const model = await as(role);
    const allowed: EventType[] = [];
    for (const type of EVENT_TYPES) if ((await tryPublish(model, names.exchange, type)) === 'ok') allowed.push(type);
    expect(allowed.sort()).toEqual([...PUBLISHERS[role]].sort());
  });

  it('nobody may reach a queue by name through the default exchange or the dead-letter exchange', async () => {
    for (const role of BROKER_ROLES) {
      const model = await as(role);
      expect(await tryPublish(model, '', names.queue('rotation'))).toBe('refused');
      expect(await tryPublish(model, names.deadLetterExchange, 'rotation.parked')).toBe('refused');
    }
  });

  it('a worker puts events back into its own queues only (retries, parking)', async () => {
    const validator = await as('validator');
    expect(await tryPublish(validator, names.redeliveryExchange('validator'), REDELIVERY_ROUTES.retry)).toBe('ok');
    expect(await tryPublish(validator, names.redeliveryExchange('validator'), REDELIVERY_ROUTES.parked)).toBe('ok');
    expect(await tryPublish(validator, names.redeliveryExchange('rotation'), REDELIVERY_ROUTES.retry)).toBe('refused');
    expect(await tryPublish(await as('intake'), names.redeliveryExchange('validator'), REDELIVERY_ROUTES.retry)).toBe('refused');
    expect(await tryPublish(await as('integration'), names.redeliveryExchange('monitor'), REDELIVERY_ROUTES.parked)).toBe('refused');
  });

  it('each user reads its own queue and no other; the integration reads notifications', async () => {
    const canConsume = async (role: BrokerRole, queue: string) => {
      const channel = await (await as(role)).createChannel();
      channel.on('error', () => undefined);
      try {
        const { consumerTag } = await channel.consume(queue, () => undefined);
        await channel.cancel(consumerTag);
        await channel.close();
        return true;
      } catch {
        return false;
      }
    };
    expect(await canConsume('validator', names.queue('validator'))).toBe(true);
    expect(await canConsume('validator', names.queue('rotation'))).toBe(false);
    expect(await canConsume('integration', names.queue('notifications'))).toBe(true);
    expect(await canConsume('integration', names.queue('monitor'))).toBe(false);
    expect(await canConsume('gateway', names.queue('notifications'))).toBe(false);
  });

  it('a service connects with its own user although it may not declare the topology', async () => {
    const logs = captureLogs('broker-users-test');
    const connection = new AmqpConnection({ url: url(userOf('rotation')), prefix, logger: logs.logger, name: 'broker-users-test' });
    try {
      await expect(connection.start()).resolves.toBeUndefined();
      expect(connection.topology.declaredBySetup).toBe(true);
    } finally {
      await connection.close();
    }
  });

  it('the notifications bound reaches a queue an older version declared, through the policy, and its parked queue too', async () => {
    const model = await as('monitor');
    const channel = await model.createConfirmChannel();
    for (let i = 0; i < 5; i++) {
      const event = createEvent('connection.degraded', { tenantId: 't-1', correlationId: `c-${i}`, producer: 'monitor' }, { reason: 'auth_failures', since: new Date().toISOString() });
      channel.publish(names.exchange, event.type, Buffer.from(JSON.stringify(event)), { persistent: true });
    }
    await channel.waitForConfirms();
    const adminChannel = await (await as('admin')).createChannel();
    await eventually(async () => (await adminChannel.checkQueue(names.queue('notifications'))).messageCount === 2, 5_000, 'two notifications kept');
    expect((await adminChannel.checkQueue(names.parkedQueue('notifications'))).messageCount).toBeLessThanOrEqual(2);
  });
});
