import { SubmissionWaiters } from './submission-waiters';

const A = 'tenant-a';
const B = 'tenant-b';
const SUBMISSION = '6a0c4b53-2f0e-4d3e-9d5c-0a7c1b8e2f11';
const LONG = 60_000;

describe('waiters of Prefer: wait', () => {
  it('wakes the waiters of the submission that was decided', async () => {
    const waiters = new SubmissionWaiters();
    const first = waiters.register(A, SUBMISSION);
    const second = waiters.register(A, SUBMISSION);
    const woken = [first.next(LONG), second.next(LONG)];
    expect(waiters.wake(A, SUBMISSION)).toBe(2);
    expect(await Promise.all(woken)).toEqual(['notified', 'notified']);
    first.close();
    second.close();
    expect(waiters.size).toBe(0);
  });

  it("never wakes another tenant's waiter, even for the same submission id", async () => {
    const waiters = new SubmissionWaiters();
    const other = waiters.register(B, SUBMISSION);
    expect(waiters.wake(A, SUBMISSION)).toBe(0);
    expect(await other.next(20)).toBe('timeout');
    other.close();
  });

  it('keeps a wake that came while the waiter was reading its row', async () => {
    const waiters = new SubmissionWaiters();
    const waiter = waiters.register(A, SUBMISSION);
    waiters.wake(A, SUBMISSION);
    expect(await waiter.next(LONG)).toBe('notified');
    // Kept once: the next wait waits again.
    expect(await waiter.next(20)).toBe('timeout');
    waiter.close();
  });

  it('wakes every waiter to read again when the LISTEN connection is back', async () => {
    const waiters = new SubmissionWaiters();
    const a = waiters.register(A, SUBMISSION);
    const b = waiters.register(B, '0f5e2d7c-9a41-4c1e-8b0f-3d6a2c9e7b10');
    const woken = [a.next(LONG), b.next(LONG)];
    expect(waiters.wakeAll()).toBe(2);
    expect(await Promise.all(woken)).toEqual(['relistened', 'relistened']);
    a.close();
    b.close();
  });

  it('lets go when the caller goes away', async () => {
    const waiters = new SubmissionWaiters();
    const waiter = waiters.register(A, SUBMISSION);
    const gone = new AbortController();
    const woken = waiter.next(LONG, gone.signal);
    gone.abort();
    expect(await woken).toBe('gone');
    expect(await waiter.next(LONG, gone.signal)).toBe('gone');
    waiter.close();
    expect(waiters.wake(A, SUBMISSION)).toBe(0);
  });
});
