import { Injectable } from '@nestjs/common';

/**
 * Why a waiter woke: a decision about its submission committed (`notified`), the LISTEN
 * connection came back and whatever it missed is unknown (`relistened`), its time was up
 * (`timeout`), or its caller went away (`gone`).
 */
export type WakeCause = 'notified' | 'relistened' | 'timeout' | 'gone';

/** One `Prefer: wait` request's place in line for one submission of one tenant. */
export interface SubmissionWaiter {
  /**
   * Resolves when the submission may have changed, after `ms`, or when `signal` aborts. A wake
   * that came while the caller was busy (reading the row) is kept, so none is missed.
   */
  next(ms: number, signal?: AbortSignal): Promise<WakeCause>;
  close(): void;
}

/**
 * The `Prefer: wait` requests of this process, by tenant and submission. In memory only: a wake
 * says "read the row again", never what it says, so a waiter decides only from its own re-read,
 * scoped to its own tenant.
 */
@Injectable()
export class SubmissionWaiters {
  private readonly waiting = new Map<string, Set<Waiter>>();

  get size(): number {
    let n = 0;
    for (const set of this.waiting.values()) n += set.size;
    return n;
  }

  /** Register before the first read of the row: a decision committed in between then wakes it. */
  register(tenantId: string, submissionId: string): SubmissionWaiter {
    const key = waiterKey(tenantId, submissionId);
    const set = this.waiting.get(key) ?? new Set<Waiter>();
    this.waiting.set(key, set);
    const waiter = new Waiter(() => {
      set.delete(waiter);
      if (set.size === 0 && this.waiting.get(key) === set) this.waiting.delete(key);
    });
    set.add(waiter);
    return waiter;
  }

  /** A decision about this tenant's submission committed; returns how many waiters woke. */
  wake(tenantId: string, submissionId: string): number {
    const set = this.waiting.get(waiterKey(tenantId, submissionId));
    if (!set) return 0;
    for (const waiter of set) waiter.wake('notified');
    return set.size;
  }

  /** Every waiter reads its row again (notifications may have been lost); returns how many. */
  wakeAll(): number {
    let n = 0;
    for (const set of this.waiting.values()) {
      for (const waiter of set) waiter.wake('relistened');
      n += set.size;
    }
    return n;
  }
}

/** Unambiguous whatever the ids contain. */
function waiterKey(tenantId: string, submissionId: string): string {
  return JSON.stringify([tenantId, submissionId]);
}

class Waiter implements SubmissionWaiter {
  private kept: WakeCause | null = null;
  private resolve?: (cause: WakeCause) => void;

  constructor(private readonly onClose: () => void) {}

  wake(cause: WakeCause): void {
    if (this.resolve) this.resolve(cause);
    else this.kept ??= cause;
  }

  next(ms: number, signal?: AbortSignal): Promise<WakeCause> {
    if (this.kept) {
      const cause = this.kept;
      this.kept = null;
      return Promise.resolve(cause);
    }
    if (signal?.aborted) return Promise.resolve('gone');
    return new Promise<WakeCause>((resolve) => {
      const finish = (cause: WakeCause): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.resolve = undefined;
        resolve(cause);
      };
      const onAbort = (): void => finish('gone');
      const timer = setTimeout(() => finish('timeout'), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.resolve = finish;
    });
  }

  close(): void {
    this.resolve?.('gone');
    this.onClose();
  }
}
