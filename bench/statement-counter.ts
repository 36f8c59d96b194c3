import { writeFileSync } from 'node:fs';
import * as pg from 'pg';

/**
 * Preloaded (`node -r`) into each service `bench:submit` starts: counts the round trips the
 * process makes to Postgres — every pg client's `query`, which is one round trip whatever it
 * carries (a statement sent with the transaction's start counts once with it) — and on SIGUSR2
 * writes `<signal number> <count>` to `KEYWARD_BENCH_STATEMENTS_FILE`. A count the machine's
 * load cannot blur, beside the latencies it does.
 */
const file = process.env.KEYWARD_BENCH_STATEMENTS_FILE;
if (file) {
  let count = 0;
  let asked = 0;
  // Taken off the prototype to be called with each client as `this`.
  const query = Reflect.get(pg.Client.prototype, 'query') as (this: pg.Client, ...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    count += 1;
    return query.apply(this, args);
  } as typeof pg.Client.prototype.query;
  process.on('SIGUSR2', () => writeFileSync(file, `${++asked} ${count}`));
}
