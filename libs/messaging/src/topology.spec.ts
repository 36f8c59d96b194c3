import { execFileSync } from 'node:child_process';
import { connect } from 'amqplib';
import { testAmqpUrl, testPrefix } from '@keyward/testing';
import { SUBSCRIPTIONS, Subscriber } from '@keyward/contracts';
import { declareTopology, deleteTopology, REDELIVERY_ROUTES, TopologyNames } from './topology';

describe('topology', () => {
  it('declares every work and parked queue as a quorum queue, idempotently, with a redelivery exchange per subscriber and no delay queues', async () => {
    const connection = await connect(testAmqpUrl());
    const names = new TopologyNames(testPrefix());
    try {
      const channel = await connection.createConfirmChannel();
      // Twice: every service declares the same topology at start.
      await declareTopology(channel, names, 'quorum');
      await declareTopology(channel, names, 'quorum');
      // The broker's own record of each queue's type (read-only listing).
      const listed = new Map(
        execFileSync('rabbitmqctl', ['list_queues', 'name', 'type', '--no-table-headers', '--quiet'], { encoding: 'utf8' })
          .split('\n')
          .map((line) => line.trim().split(/\s+/) as [string, string]),
      );
      const typeOf = async (queue: string) => listed.get(queue);
      const subscribers = Object.keys(SUBSCRIPTIONS) as Subscriber[];
      for (const s of subscribers) {
        expect([s, await typeOf(names.queue(s))]).toEqual([s, 'quorum']);
        expect([s, await typeOf(names.parkedQueue(s))]).toEqual([s, 'quorum']);
      }
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
