import { connect } from 'amqplib';
import { testAmqpUrl, testPrefix } from '@keyward/testing';
import { declareTopology, deleteTopology, TopologyNames } from './topology';

describe('topology', () => {
  it('declares every queue as a quorum queue on this broker, idempotently', async () => {
    const connection = await connect(testAmqpUrl());
    const names = new TopologyNames(testPrefix());
    try {
      const channel = await connection.createChannel();
      // Twice: every service declares the same topology at start.
      await declareTopology(channel, names, 'quorum');
      await declareTopology(channel, names, 'quorum');
      const notifications = await channel.checkQueue(names.queue('notifications'));
      expect(notifications.queue).toBe(names.queue('notifications'));
      await deleteTopology(channel, names);
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
});
