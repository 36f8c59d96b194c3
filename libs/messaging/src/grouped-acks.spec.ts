import type { Channel, ConsumeMessage } from 'amqplib';
import { GroupedAcks } from './grouped-acks';

/** The frames a channel was asked to send, in order: `ack 5+` is an `allUpTo` ack up to tag 5. */
function recordingChannel(): { channel: Channel; frames: string[] } {
  const frames: string[] = [];
  const channel = {
    ack: (msg: ConsumeMessage, allUpTo?: boolean) => frames.push(`ack ${msg.fields.deliveryTag}${allUpTo ? '+' : ''}`),
    nack: (msg: ConsumeMessage) => frames.push(`nack ${msg.fields.deliveryTag}`),
  } as unknown as Channel;
  return { channel, frames };
}

const delivery = (tag: number) => ({ fields: { deliveryTag: tag } }) as ConsumeMessage;

describe('GroupedAcks: one allUpTo ack for the handled run at the front (ADR 0041)', () => {
  afterEach(() => jest.useRealTimers());

  it.each([
    {
      scenario: 'one batch handled: one frame for all of it',
      steps: [['handled', 1, 2, 3]],
      frames: ['ack 3+'],
    },
    {
      scenario: 'a later batch handled first waits for the earlier one, then both go in one frame',
      steps: [
        ['handled', 4, 5, 6],
        ['handled', 1, 2, 3],
      ],
      frames: ['ack 6+'],
    },
    {
      scenario: 'a delivery settled alone sends its own frame first, and never falls under a grouped ack',
      steps: [
        ['handled', 1, 2],
        ['alone-nack', 3],
        ['handled', 4, 5, 6],
      ],
      frames: ['ack 2+', 'nack 3', 'ack 6+'],
    },
    {
      scenario: 'settling the delivery in hand alone frees the handled run behind it',
      steps: [
        ['handled', 2, 3],
        ['alone-ack', 1],
        ['handled', 4, 5, 6],
      ],
      frames: ['ack 1', 'ack 3+', 'ack 6+'],
    },
    {
      scenario: 'the grouped ack ends at the last handled delivery, never at one settled alone',
      steps: [
        ['handled', 1],
        ['alone-ack', 2],
        ['handled', 3],
      ],
      frames: ['ack 1+', 'ack 2', 'ack 3+'],
    },
  ])('$scenario', ({ steps, frames: expected }) => {
    const { channel, frames } = recordingChannel();
    const acks = new GroupedAcks(channel);
    for (let tag = 1; tag <= 6; tag++) acks.received(delivery(tag));
    for (const [kind, ...tags] of steps as [string, ...number[]][]) {
      if (kind === 'handled') acks.handled(tags.map(delivery));
      else if (kind === 'alone-ack') acks.settledAlone(delivery(tags[0]), () => channel.ack(delivery(tags[0])));
      else acks.settledAlone(delivery(tags[0]), () => channel.nack(delivery(tags[0]), false, true));
    }
    expect(frames).toEqual(expected);
  });

  it('acks a handled delivery alone when an earlier one stays in hand too long', () => {
    jest.useFakeTimers();
    const { channel, frames } = recordingChannel();
    const acks = new GroupedAcks(channel);
    for (let tag = 1; tag <= 4; tag++) acks.received(delivery(tag));
    acks.handled([2, 3].map(delivery));
    expect(frames).toEqual([]);
    jest.advanceTimersByTime(1_000);
    expect(frames).toEqual(['ack 2', 'ack 3']);
    // The delivery in hand settles later; nothing of the others is acked twice.
    acks.handled([delivery(1)]);
    acks.handled([delivery(4)]);
    expect(frames).toEqual(['ack 2', 'ack 3', 'ack 1+', 'ack 4+']);
  });

  it('per-event path: deliveries handled in one turn share one frame at its end, in delivery order', async () => {
    const { channel, frames } = recordingChannel();
    const acks = new GroupedAcks(channel);
    for (let tag = 1; tag <= 6; tag++) acks.received(delivery(tag));
    // A group commit resolves its callers in one turn, in any order; 5 is still in hand.
    for (const tag of [3, 1, 2, 4, 6]) acks.handledThisTurn(delivery(tag));
    expect(frames).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(frames).toEqual(['ack 4+']);
    acks.handledThisTurn(delivery(5));
    await new Promise((resolve) => setImmediate(resolve));
    expect(frames).toEqual(['ack 4+', 'ack 6+']);
  });

  it('a deferred ack that finds the channel closed is dropped, not thrown out of the event loop', async () => {
    const sent: string[] = [];
    let open = true;
    const channel = {
      ack: (msg: ConsumeMessage, allUpTo?: boolean) => {
        if (!open) throw new Error('Channel closed');
        sent.push(`ack ${msg.fields.deliveryTag}${allUpTo ? '+' : ''}`);
      },
    } as unknown as Channel;
    const acks = new GroupedAcks(channel);
    for (let tag = 1; tag <= 3; tag++) acks.received(delivery(tag));
    acks.handledThisTurn(delivery(1));
    open = false; // the connection dropped before the end of the turn
    await new Promise((resolve) => setImmediate(resolve));
    acks.handledThisTurn(delivery(2));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toEqual([]);
  });

  it('on close, acks what was handled and leaves the rest to the broker', () => {
    const { channel, frames } = recordingChannel();
    const acks = new GroupedAcks(channel);
    for (let tag = 1; tag <= 4; tag++) acks.received(delivery(tag));
    acks.handled([3, 4].map(delivery));
    acks.close();
    expect(frames).toEqual(['ack 3', 'ack 4']);
  });
});
