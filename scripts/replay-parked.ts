import { connect } from 'amqplib';
import { Client } from 'pg';
import { loadConfig } from '@keyward/config';
import { SUBSCRIPTIONS, Subscriber } from '@keyward/contracts';
import { replayParked, TopologyNames } from '@keyward/messaging';

/**
 * npm run parked:replay -- <validator|rotation|monitor|notifications> [--limit N] [--dry-run]
 * Lists parked events (type, id, attempts, last error — never a body) and moves them back to the
 * subscriber's queue with a fresh retry budget. For the validator it first clears the give-up
 * mark of the credential, so the replayed submission is validated again instead of re-parked.
 */
async function main(): Promise<void> {
  const [subscriber, ...rest] = process.argv.slice(2);
  if (!subscriber || !(subscriber in SUBSCRIPTIONS)) {
    throw new Error(`Name the queue: one of ${Object.keys(SUBSCRIPTIONS).join(', ')}`);
  }
  const limitAt = rest.indexOf('--limit');
  const limit = limitAt >= 0 ? Number(rest[limitAt + 1]) : 100;
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit takes a whole number');
  const dryRun = rest.includes('--dry-run');

  const config = loadConfig('tool');
  const connection = await connect(config.amqp.url);
  const channel = await connection.createConfirmChannel();
  const db = new Client({ connectionString: config.database.url });
  await db.connect();
  try {
    const events = await replayParked(channel, new TopologyNames(config.amqp.prefix), subscriber as Subscriber, {
      limit,
      dryRun,
      beforeReplay: async (event) => {
        if (subscriber !== 'validator') return;
        const parsed = JSON.parse(event.content.toString('utf8')) as { data?: { credentialId?: string } };
        if (parsed.data?.credentialId) {
          await db.query('UPDATE validation_attempts SET parked_at = NULL, first_failure_at = NULL WHERE credential_id = $1', [parsed.data.credentialId]);
        }
      },
    });
    for (const e of events) process.stdout.write(`${dryRun ? 'parked ' : 'replayed'} ${e.type ?? '?'} ${e.messageId ?? '?'} after ${e.attempts} attempt(s): ${e.lastError ?? ''}\n`);
    process.stdout.write(`${events.length} event(s) ${dryRun ? 'listed' : 'moved back to ' + new TopologyNames(config.amqp.prefix).queue(subscriber as Subscriber)}\n`);
  } finally {
    await db.end();
    await connection.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`keyward parked:replay: ${(error as Error)?.message ?? error}\n`);
  process.exit(1);
});
