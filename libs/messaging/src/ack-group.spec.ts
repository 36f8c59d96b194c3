import type { Channel, ConsumeMessage } from 'amqplib';
import { AckGroup } from './ack-group';

function delivery(tag: number): ConsumeMessage {
  return { fields: { deliveryTag: tag } } as ConsumeMessage;
}

/** What the broker is sent when handlers finish in and out of delivery order. */
describe('acks grouped per turn of the event loop', () => {
  let sent: string[];
  let usable: boolean;
  let group: AckGroup;
  const turn = () => new Promise((resolve) => setImmediate(resolve));

  beforeEach(() => {
    sent = [];
    usable = true;
    const channel = { ack: (msg: ConsumeMessage, allUpTo = false) => sent.push(`${msg.fields.deliveryTag}${allUpTo ? ' and all before' : ''}`) };
    group = new AckGroup(channel as unknown as Channel, () => usable);
    for (let tag = 1; tag <= 5; tag++) group.received(delivery(tag));
  });

  it('acks a settled prefix with one frame, whatever order the handlers finished in', async () => {
    group.ack(delivery(2));
    group.ack(delivery(1));
    group.ack(delivery(3));
    await turn();
    expect(sent).toEqual(['3 and all before']);
  });

  it('acks a delivery that finished before an earlier one on its own, never covering the earlier one', async () => {
    group.ack(delivery(1));
    group.ack(delivery(3));
    await turn();
    expect(sent).toEqual(['1 and all before', '3']);
    group.ack(delivery(2));
    group.ack(delivery(5));
    await turn();
    expect(sent).toEqual(['1 and all before', '3', '2 and all before', '5']);
  });

  it('leaves a nacked delivery out of the prefix', async () => {
    group.settledElsewhere(delivery(1));
    group.ack(delivery(2));
    await turn();
    expect(sent).toEqual(['2 and all before']);
  });

  it('sends nothing on a channel that is no longer the consumer\'s (the broker redelivers)', async () => {
    group.ack(delivery(1));
    usable = false;
    await turn();
    expect(sent).toEqual([]);
  });

  it('sends what is due at once when asked (shutdown)', () => {
    group.ack(delivery(1));
    group.flush();
    expect(sent).toEqual(['1 and all before']);
  });
});
