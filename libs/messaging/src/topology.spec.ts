import { createEvent } from '@keyward/contracts';
import { captureLogs, connectTestBroker, dropTopology, eventually, testAmqpUrl, testPrefix } from '@keyward/testing';
import { AmqpConnection } from './amqp-connection';
import { declareTopology, DELIVERY_LIMIT, queueArguments, REDELIVERY_ROUTES, TopologyNames, TopologyReport } from './topology';

describe('topology', () => {
  it('declares every work and parked queue as a quorum queue, idempotently, with a redelivery exchange per subscriber and no delay queues', async () => {
    const connection = await connectTestBroker();
    const names = new TopologyNames(testPrefix());
    try {
      // Twice: every service declares the same topology at start.
      const first = await declareTopology(connection, names, 'quorum');
      const second = await declareTopology(connection, names, 'quorum');
      expect(first).toEqual({ queueType: 'quorum', kept: [], classicKept: [] });
      expect(second).toEqual(first);
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      // A quorum queue refuses to be redeclared as classic: this proves the type, not just the name.
      const asClassic = { ...queueArguments(names, 'rotation', 'quorum'), 'x-queue-type': 'classic' };
      await expect(channel.assertQueue(names.queue('rotation'), { durable: true, arguments: asClassic })).rejects.toThrow(/x-queue-type/);

      // A retry copy reaches only the subscriber's own queue, a parked copy only its parking queue.
      const confirm = await connection.createConfirmChannel();
      confirm.publish(names.redeliveryExchange('rotation'), REDELIVERY_ROUTES.retry, Buffer.from('retry'), { persistent: true, mandatory: true });
      confirm.publish(names.redeliveryExchange('rotation'), REDELIVERY_ROUTES.parked, Buffer.from('parked'), { persistent: true, mandatory: true });
      await confirm.waitForConfirms();
      const retried = await confirm.get(names.queue('rotation'), { noAck: true });
      const parked = await confirm.get(names.parkedQueue('rotation'), { noAck: true });
      expect(retried && retried.content.toString()).toBe('retry');
      expect(parked && parked.content.toString()).toBe('parked');
      expect((await confirm.checkQueue(names.queue('validator'))).messageCount).toBe(0);
      const probe = await connection.createChannel();
      probe.on('error', () => undefined);
      await expect(probe.checkQueue(`${names.prefix}.rotation.retry.1000ms`)).rejects.toThrow(/NOT_FOUND/);
    } finally {
      await connection.close().catch(() => undefined);
      await dropTopology(names.prefix);
    }
  });

  it('the notifications bound drops the oldest messages for good: nothing is dead-lettered into a parked queue', async () => {
    const connection = await connectTestBroker();
    const names = new TopologyNames(testPrefix());
    try {
      await declareTopology(connection, names, 'quorum', { maxLength: 2, ttlMs: 60_000 });
      const channel = await connection.createConfirmChannel();
      // Whatever reaches the dead-letter exchange for notifications would land here.
      const { queue: deadLettered } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(deadLettered, names.deadLetterExchange, names.parkedRoutingKey('notifications'));
      for (let i = 0; i < 5; i++) {
        const event = createEvent('connection.degraded', { tenantId: 't-1', correlationId: `c-${i}`, producer: 'monitor' }, { reason: 'auth_failures', since: new Date().toISOString() });
        channel.publish(names.exchange, event.type, Buffer.from(JSON.stringify(event)), { persistent: true });
      }
      await channel.waitForConfirms();

      await eventually(async () => (await channel.checkQueue(names.queue('notifications'))).messageCount === 2, 5_000, 'two notifications kept');
      expect((await channel.checkQueue(deadLettered)).messageCount).toBe(0);
      const probe = await connection.createChannel();
      probe.on('error', () => undefined);
      await expect(probe.checkQueue(names.parkedQueue('notifications'))).rejects.toThrow(/NOT_FOUND/);
    } finally {
      await connection.close().catch(() => undefined);
      await dropTopology(names.prefix);
    }
  });

  it('a service starts on a broker whose queues an older version declared with other arguments, and reports classic queues', async () => {
    const prefix = testPrefix();
    const names = new TopologyNames(prefix);
    const admin = await connectTestBroker();
    const logs = captureLogs('topology-test');
    const fallbacks: TopologyReport[] = [];
    const service = new AmqpConnection({ url: testAmqpUrl(), prefix, logger: logs.logger, name: 'topology-test', onClassicFallback: (r) => fallbacks.push(r) });
    try {
      const channel = await admin.createChannel();
      // As declared before the notifications bound: dead-lettering and a delivery limit, no max-length.
      await channel.assertQueue(names.queue('notifications'), {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': names.deadLetterExchange,
          'x-dead-letter-routing-key': names.parkedRoutingKey('notifications'),
          'x-delivery-limit': DELIVERY_LIMIT,
        },
      });
      // And one queue left classic by an earlier fallback.
      await channel.assertQueue(names.queue('monitor'), { durable: true, arguments: { 'x-queue-type': 'classic' } });

      await expect(service.start()).resolves.toBeUndefined();

      expect(service.topology).toMatchObject({ queueType: 'classic', classicQueues: [names.queue('monitor')] });
      expect(service.topology.keptQueues).toEqual(expect.arrayContaining([names.queue('notifications'), names.queue('monitor')]));
      expect(fallbacks).toHaveLength(1);
      expect(logs.lines().some((l) => l.includes('Quorum queues are not in use') && l.includes(names.queue('monitor')))).toBe(true);
      // Everything else was declared: the rest of the topology works.
      expect((await (await admin.createChannel()).checkQueue(names.queue('rotation'))).queue).toBe(names.queue('rotation'));
    } finally {
      await service.close();
      await admin.close().catch(() => undefined);
      await dropTopology(prefix);
    }
  });
});
