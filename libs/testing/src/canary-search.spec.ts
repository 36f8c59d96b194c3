import { browseQueues, canaryForms, findCanaries, QueueWatch, parkedQueues } from './canary-search';
import { canaryKey, connectTestBroker, testPrefix } from './test-env';

describe('canary search', () => {
  it('finds every form a key takes on its way out, and names none of them', () => {
    const key = `${canaryKey('forms')}/+=&"é`;
    for (const { form, text } of canaryForms(key)) {
      const found = findCanaries({ somewhere: `before ${text} after` }, ['unrelated-canary-value', key]);
      expect(found).toContain(`somewhere: ${form} of canary #1`);
      for (const line of found) expect(line).not.toContain(text);
    }
    const basic = Buffer.from(`${key}:`).toString('base64');
    expect(findCanaries({ 'an Authorization header': `Basic ${basic}` }, [key])).toContain('an Authorization header: base64(key:) of canary #0');
    expect(findCanaries({ clean: 'nothing here' }, [key])).toEqual([]);
  });

  it('reads retry and parked copies with their headers without taking them off the queue', async () => {
    const prefix = testPrefix();
    const [parked] = parkedQueues(prefix);
    const key = canaryKey('header');
    const connection = await connectTestBroker();
    const channel = await connection.createConfirmChannel();
    try {
      await channel.assertQueue(parked, { durable: false, autoDelete: false });
      channel.sendToQueue(parked, Buffer.from('{"id":"e1"}'), { headers: { 'x-keyward-last-error': `Pleo refused ${key}` } });
      await channel.waitForConfirms();
      const watch = new QueueWatch(() => parkedQueues(prefix), 50).start();
      await new Promise((r) => setTimeout(r, 300));
      await watch.stop();
      expect(findCanaries({ 'parked copies': watch.text() }, [key])).toEqual(['parked copies: plain of canary #0']);
      expect((await browseQueues([parked])).length).toBe(1);
      expect((await channel.checkQueue(parked)).messageCount).toBe(1);
    } finally {
      await channel.deleteQueue(parked);
      await connection.close();
    }
  });
});
