import type { Channel, ConsumeMessage } from 'amqplib';

/**
 * The acks of one consumer channel, sent once per turn of the event loop instead of one frame per
 * delivery: the settled prefix of the deliveries (in delivery-tag order) as one ack with
 * `allUpTo`, the few settled out of order one by one. Each ack frame is a socket write that wakes
 * the broker; on a busy machine the writes, not the bytes, are the cost.
 *
 * An ack with `allUpTo` settles every unsettled delivery up to its tag, so every delivery of the
 * channel is registered on arrival (`received`) and leaves the prefix only when it was acked here
 * or settled otherwise (`settledElsewhere`, before a nack or reject of it).
 */
export class AckGroup {
  /** Delivery tags not yet settled, ascending (the broker numbers deliveries in order). */
  private readonly unsettled: number[] = [];
  private readonly ready = new Map<number, ConsumeMessage>();
  private scheduled = false;

  constructor(
    readonly channel: Channel,
    /** False once the channel is no longer the consumer's: its deliveries come back anyway. */
    private readonly usable: () => boolean,
  ) {}

  received(msg: ConsumeMessage): void {
    this.unsettled.push(msg.fields.deliveryTag);
  }

  ack(msg: ConsumeMessage): void {
    this.ready.set(msg.fields.deliveryTag, msg);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** A delivery nacked or rejected by the caller: no longer in the prefix an ack may cover. */
  settledElsewhere(msg: ConsumeMessage): void {
    this.remove(msg.fields.deliveryTag);
  }

  /** Sends the acks now (before the channel closes at shutdown). */
  flush(): void {
    this.scheduled = false;
    if (!this.usable()) return;
    let last: ConsumeMessage | undefined;
    while (this.unsettled.length > 0 && this.ready.has(this.unsettled[0])) {
      const tag = this.unsettled.shift()!;
      last = this.ready.get(tag);
      this.ready.delete(tag);
    }
    if (last) this.channel.ack(last, true);
    for (const [tag, msg] of this.ready) {
      this.remove(tag);
      this.channel.ack(msg);
    }
    this.ready.clear();
  }

  private remove(tag: number): void {
    const at = this.unsettled.indexOf(tag);
    if (at >= 0) this.unsettled.splice(at, 1);
  }
}
