import { connect } from 'amqplib';
import { Client } from 'pg';
import { PrivateBroker, PrivatePostgres, startPrivateBroker, startPrivatePostgres } from './private-services';

// The helper the fault tests stand on: a node of the test's own that really goes down and comes back.
describe('private services for fault tests', () => {
  jest.setTimeout(180_000);

  describe('a private RabbitMQ node', () => {
    let broker: PrivateBroker;
    beforeAll(async () => {
      broker = await startPrivateBroker();
    });
    afterAll(async () => {
      await broker?.shutdown();
    });

    it('keeps a persistent message in a durable queue across stop/start of the broker, and refuses connections while down', async () => {
      const connection = await connect(broker.url);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue('kept', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      channel.sendToQueue('kept', Buffer.from('hello'), { persistent: true });
      await channel.waitForConfirms();
      const closed = new Promise((resolve) => connection.on('close', resolve));

      await broker.stop();
      await closed;
      await expect(connect(broker.url, { timeout: 2_000 })).rejects.toThrow();
      await broker.start();

      const again = await connect(broker.url);
      const ch = await again.createChannel();
      const message = await ch.get('kept', { noAck: true });
      expect(message && message.content.toString()).toBe('hello');
      await again.close();
    });

    it('restarts the whole node process and the message survives', async () => {
      const connection = await connect(broker.url);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue('kept-node', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      channel.sendToQueue('kept-node', Buffer.from('still here'), { persistent: true });
      await channel.waitForConfirms();
      await connection.close();

      await broker.restartNode(200);

      const again = await connect(broker.url);
      const ch = await again.createChannel();
      const message = await ch.get('kept-node', { noAck: true });
      expect(message && message.content.toString()).toBe('still here');
      await again.close();
    });
  });

  describe('a private Postgres cluster', () => {
    let pg: PrivatePostgres;
    beforeAll(async () => {
      pg = await startPrivatePostgres();
    });
    afterAll(async () => {
      await pg?.shutdown();
    });

    it('cuts connections on terminateBackends and on restart, and keeps committed rows', async () => {
      const url = await pg.createMigratedDatabase();
      const client = new Client({ connectionString: url });
      client.on('error', () => undefined);
      await client.connect();
      await client.query(`CREATE TABLE kept (v text)`);
      await client.query(`INSERT INTO kept VALUES ('row')`);

      expect(await pg.terminateBackends()).toBeGreaterThanOrEqual(1);
      await expect(client.query('SELECT 1')).rejects.toThrow();

      await pg.restart(100);
      const after = new Client({ connectionString: url });
      await after.connect();
      const rows = await after.query(`SELECT v FROM kept`);
      const migrations = await after.query(`SELECT count(*)::int AS n FROM schema_migrations`);
      await after.end();
      expect(rows.rows).toEqual([{ v: 'row' }]);
      expect(migrations.rows[0].n).toBeGreaterThan(0);
    });
  });
});
