#!/usr/bin/env node
// CI only (one run on the machine at a time): removes what earlier test and benchmark runs left on
// the shared RabbitMQ (queues and exchanges of a `t<10 hex>.` or `bench<8 hex>.` prefix that no one
// consumes). Each quorum queue holds file handles; RabbitMQ refuses new connections once its
// handle budget (about 90 % of the process's open-file limit, 1024 here) is spent, so leftovers
// of killed runs pile up until every suite times out on connect.
const { execFileSync } = require('node:child_process');
const amqp = require('amqplib');

const TEST_PREFIX = /^(t[0-9a-f]{10}|bench[0-9a-f]{8})\./;
const ctl = (...args) => execFileSync('rabbitmqctl', ['-q', ...args], { encoding: 'utf8', timeout: 60_000 });

async function main() {
  const rows = ctl('list_queues', 'name', 'consumers')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([name]) => name && TEST_PREFIX.test(name));
  const prefixOf = (name) => name.slice(0, name.indexOf('.'));
  // A prefix with a consumer anywhere belongs to a run still going: none of it is touched.
  const live = new Set(rows.filter(([, consumers]) => consumers !== '0').map(([name]) => prefixOf(name)));
  const queues = rows.map(([name]) => name).filter((name) => !live.has(prefixOf(name)));
  const exchanges = ctl('list_exchanges', 'name')
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => TEST_PREFIX.test(name) && !live.has(prefixOf(name)));
  const connection = await amqp.connect(process.env.TEST_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672');
  connection.on('error', () => undefined);
  const channel = await connection.createChannel();
  for (const q of queues) await channel.deleteQueue(q).catch(() => undefined);
  for (const x of exchanges) await channel.deleteExchange(x).catch(() => undefined);
  await connection.close();
  let handles;
  try {
    handles = ctl('eval', 'file_handle_cache:info([total_limit, total_used]).').replace(/\s+/g, ' ').trim();
  } catch {
    handles = '(not reported)';
  }
  console.log(`ci: removed ${queues.length} queues and ${exchanges.length} exchanges left by earlier runs; file handles ${handles}`);
}

main().catch((error) => {
  console.log(`ci: broker housekeeping skipped (${error.message})`);
});
