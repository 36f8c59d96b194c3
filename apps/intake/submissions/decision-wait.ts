import { Inject, Injectable } from '@nestjs/common';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { waitUntilFinal } from './prefer-wait';
import { SubmissionMetrics } from './submission-metrics';
import { SubmissionWaiter, SubmissionWaiters } from './submission-waiters';

/** What a request created (a submission, a check) as its commit left it, with a waiter from `DecisionWait.open` when the caller will wait. */
export interface Created<T> {
  view: T;
  waiter?: SubmissionWaiter;
}

/**
 * `Prefer: wait` for anything a commit decides (a submission, a connection check): `load` is read
 * again when the deciding transaction of `tenantId`'s `id` commits (the decisions listener wakes
 * the waiter), on the slow re-check in case that notification was lost, and at the deadline.
 */
@Injectable()
export class DecisionWait {
  constructor(
    @Inject(SubmissionWaiters) private readonly waiters: SubmissionWaiters,
    @Inject(SubmissionMetrics) private readonly metrics: SubmissionMetrics,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
  ) {}

  /**
   * A waiter registered before the commit that creates `tenantId`'s `id`: every decision about it
   * wakes it, so the caller's own commit tells its first state and `until` needs no first read.
   * Handed to `until` (which closes it), or closed by the caller.
   */
  open(tenantId: string, id: string): SubmissionWaiter {
    return this.waiters.register(tenantId, id);
  }

  /**
   * Runs `commit`, the transaction that creates `tenantId`'s `id`, with a waiter opened before it
   * when the caller `waits` (see `open`); a commit that fails closes it.
   */
  async committing<R>(tenantId: string, id: string, waits: boolean, commit: () => Promise<R>): Promise<{ result: R; waiter?: SubmissionWaiter }> {
    const waiter = waits ? this.open(tenantId, id) : undefined;
    try {
      return { result: await commit(), waiter };
    } catch (error) {
      waiter?.close();
      throw error;
    }
  }

  /** `from`: what the caller created, with a waiter from `open`: its view is the first state, instead of a first read. */
  async until<T>(
    tenantId: string,
    id: string,
    load: () => Promise<T>,
    isFinal: (value: T) => boolean,
    seconds: number,
    signal?: AbortSignal,
    from?: Created<T>,
  ): Promise<{ value: T; final: boolean }> {
    const recheckMs = this.config.intake.preferWaitRecheckMs;
    // Registered before the first read: a decision committed after that read still wakes it.
    const waiter = from?.waiter ?? this.waiters.register(tenantId, id);
    try {
      return await waitUntilFinal(load, isFinal, {
        seconds,
        signal,
        known: from?.waiter ? { value: from.view } : undefined,
        untilChanged: async (left, abort) => this.metrics.wokeUpBy(await waiter.next(Math.min(recheckMs, left), abort), recheckMs < left),
      });
    } finally {
      waiter.close();
    }
  }
}
