import { ChannelModel } from 'amqplib';
import { SUBSCRIPTIONS, Subscriber } from '@keyward/contracts';
import { TopologyNames } from '@keyward/messaging';
import { connectTestBroker } from './test-env';

/**
 * The queues that hold copies of events besides the work queues: every parked queue of a prefix.
 * Delayed retries wait in Postgres (`scheduled_retries`, ADR 0013), which the database dump covers.
 */
export function parkedQueues(prefix: string): string[] {
  const names = new TopologyNames(prefix);
  return (Object.keys(SUBSCRIPTIONS) as Subscriber[]).map((s) => names.parkedQueue(s));
}

/**
 * The forms a key takes on its way out of a process: as typed; base64 of the key and of `key:`
 * (HTTP Basic, what is sent to Pleo), standard and URL-safe, padded or not; URL-encoded; escaped
 * inside a JSON string. A search for the plain key alone misses every other form.
 */
export function canaryForms(key: string): { form: string; text: string }[] {
  const forms: { form: string; text: string }[] = [{ form: 'plain', text: key }];
  for (const [form, bytes] of [
    ['base64(key)', Buffer.from(key, 'utf8')],
    ['base64(key:)', Buffer.from(`${key}:`, 'utf8')],
  ] as const) {
    forms.push({ form, text: bytes.toString('base64').replace(/=+$/, '') });
    forms.push({ form: `${form} url-safe`, text: bytes.toString('base64url') });
  }
  const url = encodeURIComponent(key);
  if (url !== key) forms.push({ form: 'url-encoded', text: url });
  const json = JSON.stringify(key).slice(1, -1);
  if (json !== key) forms.push({ form: 'json-escaped', text: json });
  return forms.filter((f, i, all) => all.findIndex((g) => g.text === f.text) === i);
}

/**
 * Where any form of any canary appears, as "place: form of canary #n" — never the key itself,
 * so a failure message does not become the leak. An empty list means nothing was found.
 */
export function findCanaries(places: Record<string, string>, canaries: string[]): string[] {
  const found: string[] = [];
  canaries.forEach((key, n) => {
    const forms = canaryForms(key);
    for (const [place, text] of Object.entries(places)) {
      for (const { form, text: needle } of forms) if (text.includes(needle)) found.push(`${place}: ${form} of canary #${n}`);
    }
  });
  return found;
}

/**
 * Every message waiting in the given queues, read without consuming it (fetched unacknowledged,
 * then returned by closing the channel): body, properties and headers such as the last error a
 * retry or parked copy carries. Queues that do not exist are skipped, so the same list works
 * whatever retry design the transport has.
 */
export async function browseQueues(queues: string[]): Promise<string[]> {
  const connection = await connectTestBroker();
  try {
    return await browseOn(connection, queues);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function browseOn(connection: ChannelModel, queues: string[]): Promise<string[]> {
  const seen: string[] = [];
  for (const queue of queues) {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined); // a missing queue closes the channel: skipped
    try {
      await channel.checkQueue(queue);
      for (let n = 0; n < 10_000; n++) {
        const msg = await channel.get(queue, { noAck: false });
        if (msg === false) break;
        seen.push(`${queue} ${JSON.stringify(msg.properties)} ${msg.content.toString('utf8')}`);
      }
      await channel.close();
    } catch {
      /* no such queue */
    }
  }
  return seen;
}

/** Rejects once `ms` have passed, so one stalled read cannot hold a watch (and its test) for ever. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Everything a source held while it was watched: polled every `intervalMs` until stopped. */
class Watch {
  protected readonly seen = new Set<string>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** Sweeps that failed or stalled; a test that relies on the watch can assert there were none left unexplained. */
  readonly failures: string[] = [];
  /** Sweeps that completed. */
  sweeps = 0;

  constructor(
    private readonly read: () => Promise<string[]>,
    private readonly intervalMs: number,
    private readonly sweepTimeoutMs = 15_000,
  ) {}

  start(): this {
    const tick = () => {
      this.running = this.sweep().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.timer = setTimeout(tick, 0);
    return this;
  }

  async sweep(): Promise<void> {
    try {
      for (const item of await within(this.read(), this.sweepTimeoutMs, 'a sweep')) this.seen.add(item);
      this.sweeps++;
    } catch (error) {
      this.failures.push(String(error));
      await this.reset();
    }
  }

  /** Called after a failed sweep: a watch with a connection drops it, so the next sweep opens a new one. */
  protected async reset(): Promise<void> {}

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.sweep();
  }

  text(): string {
    return [...this.seen].join('\n');
  }
}

/**
 * Browses the queues while a test runs, so copies that wait only briefly are seen too, not only
 * what is still parked at the end.
 */
export class QueueWatch extends Watch {
  private connection?: Promise<ChannelModel>;

  constructor(queues: () => string[], intervalMs = 250) {
    // One connection for the whole watch: a new one every tick is hundreds of connections a minute.
    super(async () => browseOn(await this.open(), queues()), intervalMs);
  }

  private open(): Promise<ChannelModel> {
    this.connection ??= connectTestBroker().then((c) => {
      c.on('close', () => (this.connection = undefined));
      return c;
    });
    this.connection.catch(() => (this.connection = undefined));
    return this.connection;
  }

  protected override async reset(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await connection?.then((c) => within(c.close(), 5_000, 'closing the watch connection')).catch(() => undefined);
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.reset();
  }

  get messages(): ReadonlySet<string> {
    return this.seen;
  }
}

/**
 * Every row a table held while it was watched: retry copies wait in Postgres (`scheduled_retries`,
 * with the last error) only until they are republished, so a search at the end would miss them.
 */
export class RowWatch extends Watch {
  constructor(read: () => Promise<unknown[]>, intervalMs = 100) {
    super(async () => (await read()).map((row) => JSON.stringify(row)), intervalMs);
  }

  get rows(): ReadonlySet<string> {
    return this.seen;
  }
}
