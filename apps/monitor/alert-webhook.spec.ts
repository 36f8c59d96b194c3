import { Webhook } from 'standardwebhooks';
import { standardWebhookHeaders } from './alert-webhook';

const secret = (text: string) => `whsec_${Buffer.from(text.padEnd(32, '.')).toString('base64')}`;
const CURRENT = secret('current-signing-secret');
const PREVIOUS = secret('previous-signing-secret');
const body = JSON.stringify({ id: 'e1', type: 'alert.reconnection_required', data: { last4: 'ab12' } });
const now = new Date('2026-11-30T12:00:00.500Z');

describe('Standard Webhooks signing with rotation', () => {
  /** The library verifies against the wall clock; sign at the real now for verification cases. */
  const verify = (key: string, headers: Record<string, string>, payload = body) => new Webhook(key).verify(payload, headers);

  it('sends webhook-id, a whole-second webhook-timestamp and one v1 signature per secret', () => {
    const headers = standardWebhookHeaders([{ secret: CURRENT }], 'msg_1', body, now);
    expect(headers['webhook-id']).toBe('msg_1');
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(now.getTime() / 1000)));
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  });

  it('carries both signatures during the rotation window: a receiver with either secret accepts', () => {
    const until = new Date(Date.now() + 3600_000);
    const headers = standardWebhookHeaders([{ secret: CURRENT }, { secret: PREVIOUS, until }], 'msg_2', body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(verify(CURRENT, headers)).toEqual(JSON.parse(body));
    expect(verify(PREVIOUS, headers)).toEqual(JSON.parse(body));
    expect(() => verify(secret('someone-else'), headers)).toThrow();
    expect(() => verify(CURRENT, headers, body.replace('ab12', 'zzzz'))).toThrow();
  });

  it('drops the previous secret once its window ended', () => {
    const headers = standardWebhookHeaders([{ secret: CURRENT }, { secret: PREVIOUS, until: new Date(Date.now() - 1000) }], 'msg_3', body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(1);
    expect(() => verify(PREVIOUS, headers)).toThrow();
    expect(verify(CURRENT, headers)).toEqual(JSON.parse(body));
  });

  it('sends no signature header without a secret (refused in production by the config)', () => {
    expect(standardWebhookHeaders([], 'msg_4', body)).not.toHaveProperty('webhook-signature');
  });
});
