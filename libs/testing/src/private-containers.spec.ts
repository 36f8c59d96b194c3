import { execFileSync } from 'node:child_process';
import { connect } from 'amqplib';
import { Client } from 'pg';
import { containerEngineAnswers, IsolatedBroker, IsolatedPostgres, startIsolatedBroker, startIsolatedPostgres } from './private-containers';

/**
 * The private broker and database that restart and version suites use instead of the shared ones:
 * containers where an engine answers, local processes where none does (ADR 0026).
 */
describe('isolated broker and database (private-containers)', () => {
  let broker: IsolatedBroker | undefined;
  let postgres: IsolatedPostgres | undefined;

  afterAll(async () => {
    await broker?.shutdown();
    await postgres?.shutdown();
  }, 60_000);

  it('runs in a container exactly when a container engine answers', async () => {
    // One after the other: a failed start of one must not leave the other unreferenced.
    broker = await startIsolatedBroker();
    postgres = await startIsolatedPostgres();
    const expected = (await containerEngineAnswers()) ? 'container' : 'process';
    expect({ broker: broker.runsIn, postgres: postgres.runsIn }).toEqual({ broker: expected, postgres: expected });
    expect(new URL(broker.url).port).not.toBe('5672');
    expect(new URL(postgres.adminUrl).port).not.toBe('5432');
  }, 240_000);

  it('keeps a durable queue and its messages across a broker restart, on the same URL', async () => {
    const queue = `private-services-${process.pid}`;
    const before = await connect(broker!.url);
    const channel = await before.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    channel.sendToQueue(queue, Buffer.from('kept'), { persistent: true });
    await channel.waitForConfirms();
    const closed = new Promise((done) => before.once('close', done));
    before.on('error', () => undefined);

    await broker!.restart();
    await closed; // the restart cut the connection, as a real one does

    const after = await connect(broker!.url);
    const reader = await after.createChannel();
    const message = await reader.get(queue, { noAck: true });
    expect(message && message.content.toString()).toBe('kept');
    await after.close();
  }, 180_000);

  it('serves the major version of the local pg_dump, which can therefore dump it, and keeps data across a restart', async () => {
    const pgDumpMajor = Number(/\b(\d+)\.\d+/.exec(execFileSync('pg_dump', ['--version'], { encoding: 'utf8' }))![1]);
    expect(postgres!.serverMajorVersion).toBe(pgDumpMajor);

    const client = new Client({ connectionString: postgres!.adminUrl });
    await client.connect();
    await client.query('CREATE DATABASE kept');
    await client.end();
    const url = postgres!.urlFor('kept');
    const writer = new Client({ connectionString: url });
    await writer.connect();
    await writer.query("CREATE TABLE things (name text); INSERT INTO things VALUES ('survives')");
    await writer.end();

    await postgres!.restart();

    const reader = new Client({ connectionString: url });
    await reader.connect();
    expect((await reader.query('SELECT name FROM things')).rows).toEqual([{ name: 'survives' }]);
    await reader.end();
    expect(execFileSync('pg_dump', ['--data-only', url], { encoding: 'utf8' })).toContain('survives');
  }, 180_000);
});
