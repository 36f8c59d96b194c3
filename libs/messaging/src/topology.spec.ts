import { connect } from 'amqplib';
import { testAmqpUrl, testPrefix } from '@keyward/testing';
import { declareTopology, deleteTopology, REDELIVERY_ROUTES, TopologyNames } from './topology';

describe('topology', () => {
  it('declares the queues idempotently, with a redelivery exchange per subscriber and no delay queues', async () => {
    const connection = await connect(testAmqpUrl());
    const names = new TopologyNames(testPrefix());
    try {
      const channel = await connection.createConfirmChannel();
      // Twice: every service declares the same topology at start.
      await declareTopology(channel, names, 'quorum');
      await declareTopology(channel, names, 'quorum');
      const notifications = await channel.checkQueue(names.queue('notifications'));
      expect(notifications.queue).toBe(names.queue('notifications'));

      // A retry copy reaches only the subscriber's own queue, a parked copy only its parking queue.
      channel.publish(names.redeliveryExchange('rotation'), REDELIVERY_ROUTES.retry, Buffer.from('retry'), { persistent: true, mandatory: true });
      channel.publish(names.redeliveryExchange('rotation'), REDELIVERY_ROUTES.parked, Buffer.from('parked'), { persistent: true, mandatory: true });
      await channel.waitForConfirms();
      const retried = await channel.get(names.queue('rotation'), { noAck: true });
      const parked = await channel.get(names.parkedQueue('rotation'), { noAck: true });
      expect(retried && retried.content.toString()).toBe('retry');
      expect(parked && parked.content.toString()).toBe('parked');
      expect((await channel.checkQueue(names.queue('validator'))).messageCount).toBe(0);

      const probe = await connection.createChannel();
      probe.on('error', () => undefined);
      await expect(probe.checkQueue(`${names.prefix}.rotation.retry.1000ms`)).rejects.toThrow(/NOT_FOUND/);
      await deleteTopology(channel, names);
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
});
