import { loadConfig } from '@keyward/config';
import { Metrics } from '@keyward/observability';
import { DecisionWait } from './decision-wait';
import { SubmissionMetrics } from './submission-metrics';
import { SubmissionWaiters } from './submission-waiters';

const TENANT = 'tenant-a';
const SUBMISSION = '6a0c4b53-2f0e-4d3e-9d5c-0a7c1b8e2f11';

function decisionWait(): { decisions: DecisionWait; waiters: SubmissionWaiters } {
  // The development defaults: a 5 s re-check, far beyond what these cases wait.
  const config = loadConfig('intake', { NODE_ENV: 'development' });
  const waiters = new SubmissionWaiters();
  return { decisions: new DecisionWait(waiters, new SubmissionMetrics(new Metrics('intake')), config), waiters };
}

/** A row that reads `pending` until its decision commits; what each load read. */
function row() {
  const state = { value: 'pending', loads: [] as string[] };
  return { state, load: async () => (state.loads.push(state.value), state.value) };
}

describe('Prefer: wait for a decision of what this process just created', () => {
  it('catches a decision that commits between the creating commit and the wait, from the waiter opened before the commit', async () => {
    const { decisions, waiters } = decisionWait();
    const { state, load } = row();
    const waiter = decisions.open(TENANT, SUBMISSION);
    // The creating transaction commits; the decision commits and notifies before the caller waits.
    state.value = 'accepted';
    expect(waiters.wake(TENANT, SUBMISSION)).toBe(1);
    const started = Date.now();
    const result = await decisions.until(TENANT, SUBMISSION, load, (v) => v === 'accepted', 10, undefined, { waiter, view: 'pending' });
    expect(result).toEqual({ value: 'accepted', final: true });
    expect(Date.now() - started).toBeLessThan(2_000); // woken, not by the 5 s re-check
    expect(waiters.size).toBe(0);
  });

  it('reads the row only once woken: the state its own commit told it needs no read', async () => {
    const { decisions, waiters } = decisionWait();
    const { state, load } = row();
    const waiter = decisions.open(TENANT, SUBMISSION);
    setTimeout(() => {
      state.value = 'accepted';
      waiters.wake(TENANT, SUBMISSION);
    }, 50);
    const result = await decisions.until(TENANT, SUBMISSION, load, (v) => v === 'accepted', 10, undefined, { waiter, view: 'pending' });
    expect(result).toEqual({ value: 'accepted', final: true });
    expect(state.loads).toEqual(['accepted']);
  });

  it('reads first when it has no waiter from before the commit', async () => {
    const { decisions, waiters } = decisionWait();
    const { state, load } = row();
    setTimeout(() => {
      state.value = 'accepted';
      waiters.wake(TENANT, SUBMISSION);
    }, 50);
    const result = await decisions.until(TENANT, SUBMISSION, load, (v) => v === 'accepted', 10);
    expect(result).toEqual({ value: 'accepted', final: true });
    expect(state.loads).toEqual(['pending', 'accepted']);
    expect(waiters.size).toBe(0);
  });
});
