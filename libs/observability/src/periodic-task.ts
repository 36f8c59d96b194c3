/**
 * What a round reports: `more` when it stopped at its batch limit, so the next round starts at
 * once; `{ nextInMs }` when it knows its next work is due then (the task sleeps that long, never
 * more than `intervalMs`); otherwise the next round comes after `intervalMs`.
 */
export type RoundResult = 'more' | 'done' | { nextInMs: number } | void;

/**
 * A relay's look at its earliest row as its round's answer: none waiting → `done`; the first due
 * later → sleep until then; undefined when one is due now (the round goes on to claim).
 */
export function untilDue(inMs: number | null): RoundResult | undefined {
  if (inMs === null) return 'done';
  return inMs > 0 ? { nextInMs: inMs } : undefined;
}

export interface PeriodicTaskOptions {
  /** One round of the work. */
  round: () => Promise<RoundResult>;
  /** The wait after a round that found nothing more to do (the longest, when a round names its next). */
  intervalMs: number;
  /** Before each round: false skips it and waits `notReadyMs` (e.g. while the broker is away). */
  ready?: () => boolean;
  notReadyMs?: number;
  /** A failed round: its owner logs and counts it; the next round comes after `backoffMs`. */
  onFailure?: (error: unknown, backoffMs: number) => void;
  /** Backoff after consecutive failures: doubles from `initialMs` up to `maxMs`. */
  backoff?: { initialMs: number; maxMs: number };
  /** The first round runs at once (default) or only after one interval. */
  startImmediately?: boolean;
}

/**
 * The one loop for work that repeats: relays, sweeps, purges, pruners. A round never overlaps
 * the next; a failure backs off exponentially and never ends the loop; `wake` starts the next
 * round now (a wake during a round is kept, so no signal is lost); `stop` waits for the round
 * in hand and starts no other.
 */
export class PeriodicTask {
  private running = false;
  private loop?: Promise<void>;
  private wakeSleeper?: () => void;
  private woken = false;

  constructor(private readonly options: PeriodicTaskOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Runs the next round now instead of after the wait. */
  wake(): void {
    this.woken = true;
    this.wakeSleeper?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wakeSleeper?.();
    await this.loop;
  }

  get isRunning(): boolean {
    return this.running;
  }

  private async run(): Promise<void> {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 100, maxMs: 10_000 };
    let backoff = initialMs;
    if (this.options.startImmediately === false) await this.sleep(this.options.intervalMs);
    while (this.running) {
      if (this.options.ready && !this.options.ready()) {
        await this.sleep(this.options.notReadyMs ?? 250);
        continue;
      }
      try {
        const result = await this.options.round();
        backoff = initialMs;
        if (result === 'more') continue;
        await this.sleep(typeof result === 'object' ? Math.min(Math.max(0, result.nextInMs), this.options.intervalMs) : this.options.intervalMs);
      } catch (error) {
        this.options.onFailure?.(error, backoff);
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, maxMs);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeSleeper = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref?.();
      this.wakeSleeper = done;
    });
  }
}
