import type { Channel, ConsumeMessage } from 'amqplib';

/** How long a handled delivery may wait behind an earlier one still in hand before it is acked alone. */
const MAX_DEFERRAL_MS = 1_000;

/**
 * The acks of one consumer channel in batch mode (ADR 0041): deliveries a batch handled are acked
 * with one `allUpTo` ack for the longest run of handled deliveries at the front, instead of one
 * frame (and one socket write) each. A `multiple` ack settles every delivery of the channel up to
 * its tag, so it is only ever sent for a tag whose delivery, and every delivery before it still
 * open on the broker, was handled: every delivery is tracked from its arrival, and one settled
 * alone (`settledAlone`: an ack, a retry's ack, a nack, a park) leaves the tracking first, its own
 * frame sent before any grouped ack that could cover it. A handled delivery behind an earlier one
 * still in hand waits for it, at most `MAX_DEFERRAL_MS`, then is acked alone.
 */
export class GroupedAcks {
  /** Deliveries not yet settled, in delivery order (a Map keeps insertion order); true once handled. */
  private readonly open = new Map<number, { msg: ConsumeMessage; handled: boolean }>();
  private timer?: NodeJS.Timeout;
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly channel: Channel) {}

  /** A delivery arrived. */
  received(msg: ConsumeMessage): void {
    this.open.set(msg.fields.deliveryTag, { msg, handled: false });
  }

  /** Handled: acked with the run it belongs to, as soon as every delivery before it is settled. */
  handled(messages: ConsumeMessage[]): void {
    this.mark(messages);
    this.flush();
  }

  /**
   * One delivery handled alone (the per-event path): as `handled`, but the frame goes at the end
   * of this turn of the event loop, so that deliveries handled in the same turn (the events of one
   * group commit, ADR 0039) share it.
   */
  handledThisTurn(msg: ConsumeMessage): void {
    this.mark([msg]);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private mark(messages: ConsumeMessage[]): void {
    for (const msg of messages) {
      const entry = this.open.get(msg.fields.deliveryTag);
      if (entry) entry.handled = true;
    }
  }

  /**
   * Settles one delivery alone: `settle` sends its own frame (ack, nack), then it leaves the
   * tracking, which may free the run behind it.
   */
  settledAlone(msg: ConsumeMessage, settle: () => void): void {
    settle();
    this.open.delete(msg.fields.deliveryTag);
    this.flush();
  }

  /** Acks the handled run at the front with one frame; the handled deliveries behind it wait, a bounded time. */
  private flush(): void {
    let last: ConsumeMessage | undefined;
    for (const [tag, entry] of this.open) {
      if (!entry.handled) break;
      last = entry.msg;
      this.open.delete(tag);
    }
    if (last) this.send(last, true);
    if (this.timer || ![...this.open.values()].some((e) => e.handled)) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.ackWaitingAlone();
    }, MAX_DEFERRAL_MS);
    this.timer.unref();
  }

  /** The handled deliveries still behind one in hand, each acked alone. */
  private ackWaitingAlone(): void {
    for (const [tag, entry] of this.open) {
      if (!entry.handled) continue;
      this.open.delete(tag);
      this.send(entry.msg, false);
    }
  }

  /**
   * A deferred ack (end of turn, or the 1 s timer) may find the channel closed meanwhile: amqplib
   * then throws, outside any caller. Nothing is lost (the broker gives those deliveries again and
   * the inbox drops the second run), so the ack is dropped and so is every later one.
   */
  private send(msg: ConsumeMessage, allUpTo: boolean): void {
    if (this.closed) return;
    try {
      this.channel.ack(msg, allUpTo);
    } catch {
      this.closed = true;
      this.open.clear();
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** The channel is closing: what was handled is acked (the rest the broker gives again). */
  close(): void {
    this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.ackWaitingAlone();
  }
}
