import { Client } from 'pg';

export interface NotificationListenerOptions {
  url: string;
  channel: string;
  applicationName?: string;
  /** Each notification's payload, in the order Postgres delivered them. */
  onNotification(payload: string): void;
  /**
   * After every (re)connect, once LISTEN is in place. Whatever was notified while there was no
   * connection is lost: this is where the caller looks at the rows again.
   */
  onListening(): void;
  /** The connection failed or was lost; a new one is tried after `retryInMs`. */
  onLost?(error: unknown, retryInMs: number): void;
  /** First reconnect delay, doubled per failed attempt up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * A `SELECT 1` on the connection this often; no answer within `pingTimeoutMs` counts as lost.
   * A half-open TCP connection (a failover, a dropped route) otherwise stays silent for minutes.
   */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
}

const CHANNEL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * One dedicated Postgres connection that LISTENs on one channel, for as long as it runs: it
 * reconnects with exponential backoff after any loss (a restart, a terminated backend, a failed
 * ping) and says when it listens again, so the caller can catch up on what it missed.
 */
export class NotificationListener {
  private client?: Client;
  private running = false;
  private listening = false;
  private loop?: Promise<void>;
  private wakeSleep?: () => void;

  constructor(private readonly options: NotificationListenerOptions) {
    if (!CHANNEL_NAME.test(options.channel)) throw new Error(`Not a channel name: ${options.channel}`);
  }

  /** Whether LISTEN is in place right now. */
  get isListening(): boolean {
    return this.listening;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wakeSleep?.();
    await this.client?.end().catch(() => undefined);
    await this.loop;
  }

  private async run(): Promise<void> {
    const initial = this.options.initialBackoffMs ?? 250;
    const max = this.options.maxBackoffMs ?? 10_000;
    let backoff = initial;
    while (this.running) {
      const error = await this.listenUntilLost(() => (backoff = initial));
      this.listening = false;
      if (!this.running) return;
      this.options.onLost?.(error, backoff);
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, max);
    }
  }

  /** Connects, LISTENs and returns only when the connection is gone, with why. */
  private async listenUntilLost(onListening: () => void): Promise<unknown> {
    const client = new Client({
      connectionString: this.options.url,
      application_name: this.options.applicationName,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
    });
    this.client = client;
    let lost!: (error: unknown) => void;
    const gone = new Promise<unknown>((resolve) => (lost = resolve));
    client.on('error', (error) => lost(error));
    client.on('end', () => lost(new Error('connection ended')));
    client.on('notification', (message) => {
      if (message.channel === this.options.channel) this.options.onNotification(message.payload ?? '');
    });
    let ping: NodeJS.Timeout | undefined;
    try {
      await client.connect();
      if (!this.running) return undefined;
      await client.query(`LISTEN ${this.options.channel}`);
      this.listening = true;
      onListening();
      this.options.onListening();
      ping = this.schedulePings(client, lost);
      return await gone;
    } catch (error) {
      return error;
    } finally {
      clearInterval(ping);
      this.client = undefined;
      await client.end().catch(() => undefined);
    }
  }

  private schedulePings(client: Client, lost: (error: unknown) => void): NodeJS.Timeout | undefined {
    const every = this.options.pingIntervalMs ?? 30_000;
    const within = this.options.pingTimeoutMs ?? 10_000;
    if (every <= 0) return undefined;
    let inFlight = false;
    const timer = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      let timeout: NodeJS.Timeout | undefined;
      const unanswered = new Promise<never>((_, reject) => {
        timeout = setTimeout(() => reject(new Error(`no answer to a ping within ${within} ms`)), within);
      });
      Promise.race([client.query('SELECT 1'), unanswered])
        .catch((error: unknown) => lost(error))
        .finally(() => {
          clearTimeout(timeout);
          inFlight = false;
        });
    }, every);
    timer.unref();
    return timer;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = done;
    });
  }
}
