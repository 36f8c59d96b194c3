import { randomUUID } from 'node:crypto';
import { Controller, INestApplication, Inject, Module } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { ServiceDefinition } from '@keyward/bootstrap';
import { createEvent, EventEnvelope } from '@keyward/contracts';
import { captureLogs, connectTestBroker, createTestDatabase, dropTopology, eventually, publishExternal, startTestService, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { AmqpConnection } from './amqp-connection';
import { TopologyNames } from './topology';

const calls: string[] = [];

/** Takes the process's broker connection down mid-event, as an out-of-memory crash would. */
@Controller()
class CrashingHandler {
  constructor(@Inject(AmqpConnection) private readonly connection: AmqpConnection) {}

  @EventPattern('key.revalidate')
  async onRevalidate(@Payload() event: EventEnvelope<'key.revalidate'>): Promise<void> {
    calls.push(event.id);
    await this.connection.current?.close();
  }
}

@Module({ controllers: [CrashingHandler] })
class CrashingModule {}

describe('delivery limit on classic queues (security review finding 25)', () => {
  let db: TestDatabase;
  let prefix: string;
  let app: INestApplication;
  const logs = captureLogs('delivery-limit-test');

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    // The subscriber queue is classic (a broker without quorum queues, or an earlier fallback).
    const admin = await connectTestBroker();
    await (await admin.createChannel()).assertQueue(new TopologyNames(prefix).queue('validator'), { durable: true, arguments: { 'x-queue-type': 'classic' } });
    await admin.close();
    const definition: ServiceDefinition = { module: CrashingModule, consumes: 'validator', retry: { deliveryLimit: 2 } };
    app = await startTestService(definition, testConfig('validator', { databaseUrl: db.url, prefix }), logs.logger);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await dropTopology(prefix);
    await db?.drop();
  });

  it('an event that crashes its consumer every time is parked after the limit instead of being redelivered for ever', async () => {
    expect(app.get(AmqpConnection).topology.classicQueues).toEqual([`${prefix}.validator`]);
    const event = createEvent('key.revalidate', { tenantId: 't-crash', correlationId: 'c-1', producer: 'monitor' }, { credentialId: randomUUID(), reason: 'manual' });
    await publishExternal(prefix, event);

    const names = new TopologyNames(prefix);
    const connection = await connectTestBroker();
    const channel = await connection.createChannel();
    try {
      await eventually(async () => (await channel.checkQueue(names.parkedQueue('validator'))).messageCount === 1, 30_000, 'the event parked');
      // First delivery and two redeliveries reached the handler; the third redelivery did not.
      expect(calls.filter((id) => id === event.id)).toHaveLength(3);
      const parked = await channel.get(names.parkedQueue('validator'), { noAck: true });
      expect(parked && parked.properties.messageId).toBe(event.id);
      expect(parked && String(parked.properties.headers?.['x-keyward-last-error'])).toContain('delivery_limit');
      expect((await db.query<{ deliveries: number }>(`SELECT deliveries FROM redeliveries WHERE event_id = $1`, [event.id]))[0].deliveries).toBe(3);
    } finally {
      await connection.close();
    }
  });
});
