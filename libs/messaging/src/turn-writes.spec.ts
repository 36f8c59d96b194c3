import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import type { ChannelModel } from 'amqplib';
import { connectTestBroker } from '@keyward/testing';
import { batchTurnWrites, brokerSocket } from './turn-writes';

/** Counts what reaches the socket's syscalls: one `_write` or `_writev` is one write to the kernel. */
function countWrites(model: ChannelModel): { writes: number } {
  const socket = brokerSocket(model) as Socket & Record<'_write' | '_writev', (...a: unknown[]) => void>;
  const counted = { writes: 0 };
  for (const name of ['_write', '_writev'] as const) {
    const original = socket[name].bind(socket);
    socket[name] = (...args: unknown[]) => {
      counted.writes += 1;
      original(...args);
    };
  }
  return counted;
}

async function publishInOneTurn(model: ChannelModel, n: number): Promise<number> {
  const channel = await model.createConfirmChannel();
  const queue = `turn-writes.${randomUUID()}`;
  await channel.assertQueue(queue, { exclusive: true });
  for (let i = 0; i < n; i++) channel.sendToQueue(queue, Buffer.from(`event ${i}`), { persistent: true });
  await channel.waitForConfirms();
  const { messageCount } = await channel.checkQueue(queue);
  await channel.close();
  return messageCount;
}

describe('frames of one turn leave in one write (ADR 0058)', () => {
  let plain: ChannelModel;
  let batched: ChannelModel;
  let found: boolean;

  beforeAll(async () => {
    [plain, batched] = await Promise.all([connectTestBroker(), connectTestBroker()]);
    found = batchTurnWrites(batched);
  });
  afterAll(async () => {
    await Promise.all([plain.close(), batched.close()]);
  });

  it('finds the socket amqplib writes to (an upgrade that moves it fails here, not silently in production)', () => {
    expect(found).toBe(true);
  });

  it('200 publishes of one turn: a handful of writes instead of one each, and every message arrives', async () => {
    const before = countWrites(plain);
    expect(await publishInOneTurn(plain, 200)).toBe(200);
    const after = countWrites(batched);
    expect(await publishInOneTurn(batched, 200)).toBe(200);

    expect(before.writes).toBeGreaterThanOrEqual(200);
    // The muxer stops at the socket's high-water mark (16 KiB) and goes on after the drain: a few writes.
    expect(after.writes).toBeLessThan(20);
  });

  it('a frame written alone still leaves at the end of its turn', async () => {
    const channel = await batched.createConfirmChannel();
    const queue = `turn-writes.${randomUUID()}`;
    await channel.assertQueue(queue, { exclusive: true });
    channel.sendToQueue(queue, Buffer.from('alone'));
    await channel.waitForConfirms();
    expect((await channel.checkQueue(queue)).messageCount).toBe(1);
    await channel.close();
  });
});
