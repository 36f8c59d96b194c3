import { execFileSync } from 'node:child_process';
import { connect } from 'amqplib';
import { testAmqpUrl, testPrefix } from '@keyward/testing';
import { SUBSCRIPTIONS, Subscriber } from '@keyward/contracts';
import { declareTopology, deleteTopology, RETRY_TIERS, TopologyNames } from './topology';

describe('topology', () => {
  it('declares every work and parked queue as a quorum queue on this broker (delay tiers classic), idempotently', async () => {
    const connection = await connect(testAmqpUrl());
    const names = new TopologyNames(testPrefix());
    try {
      const channel = await connection.createChannel();
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
        // Delay tiers rely on per-queue TTL ordering: classic by design.
        for (const ms of RETRY_TIERS[s]) expect(await typeOf(names.retryQueue(s, ms))).toBe('classic');
      }
      await deleteTopology(channel, names);
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
});
