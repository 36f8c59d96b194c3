import { randomUUID } from 'node:crypto';
import { compareTenantIds, EVENT_TYPES, EventSchemaError, PROVIDER_TENANT_ID, REJECTION_REASONS, SUBSCRIPTIONS, TENANT_ID_PATTERN, createEvent, parseEvent, problem } from './index';

const origin = { tenantId: 'tenant-1', correlationId: 'corr-1', producer: 'intake' };

describe('event contracts', () => {
  it('builds a valid envelope', () => {
    const event = createEvent('key.submitted', origin, {
      submissionId: randomUUID(),
      credentialId: randomUUID(),
      secretVersionId: randomUUID(),
      last4: 'abcd',
      replacing: false,
    });
    expect(event).toMatchObject({ type: 'key.submitted', version: 1, tenantId: 'tenant-1', producer: 'intake' });
    expect(event).not.toHaveProperty('causationId');
    expect(parseEvent(JSON.parse(JSON.stringify(event)))).toEqual(event);
  });

  it('refuses an unknown field in data, naming neither its value nor the field (a key can hide in a field name)', () => {
    const data = { credentialId: randomUUID(), reportedBy: 'ops', apiKey: 'canary-value-123456789', pleo_canary_fieldname_0123456789: 1 };
    expect.assertions(4);
    try {
      createEvent('key.compromised', origin, data as never);
    } catch (error) {
      expect(error).toBeInstanceOf(EventSchemaError);
      expect((error as Error).message).toContain('data: unrecognized_keys (2 fields)');
      expect((error as Error).message).not.toContain('canary-value-123456789');
      expect((error as Error).message).not.toMatch(/apiKey|pleo_canary_fieldname/);
    }
  });

  it('does not echo an unknown event type (publisher-controlled)', () => {
    const event = createEvent('key.revalidate', origin, { credentialId: randomUUID(), reason: 'probe' });
    expect(() => parseEvent({ ...event, type: 'pleo_canary_in_type_0123456789' })).toThrow(/^(?!.*pleo_canary_in_type).*unknown event type/);
  });

  it('refuses an unknown field in the envelope and an unknown type', () => {
    const event = createEvent('key.revalidate', origin, { credentialId: randomUUID(), reason: 'probe' });
    expect(() => parseEvent({ ...event, secret: 'x' })).toThrow(EventSchemaError);
    expect(() => parseEvent({ ...event, type: 'key.stolen' })).toThrow(/unknown event type/);
  });

  it('gives every event type at least one subscriber, so none is unroutable', () => {
    const subscribed = new Set(Object.values(SUBSCRIPTIONS).flat());
    expect(EVENT_TYPES.filter((type) => !subscribed.has(type))).toEqual([]);
  });

  it('has a person-facing message and action for every rejection reason', () => {
    for (const reason of REJECTION_REASONS) {
      const p = problem(reason);
      expect(p.message.length).toBeGreaterThan(10);
      expect(p.action.length).toBeGreaterThan(10);
    }
  });
});

describe('tenant ids', () => {
  it('accepts customer tenant ids and the reserved provider id, and nothing that could leave a path segment', () => {
    const at = (tenantId: string) => () => createEvent('connection.degraded', { ...origin, tenantId }, { reason: 'x', since: new Date().toISOString() });
    expect(at('acme-42_eu')).not.toThrow();
    expect(at(PROVIDER_TENANT_ID)).not.toThrow();
    for (const bad of ['_other', '../etc', 'a/b', '', 'x'.repeat(65), 'ünï']) expect(at(bad)).toThrow(EventSchemaError);
    expect(TENANT_ID_PATTERN.test(PROVIDER_TENANT_ID)).toBe(false);
  });
});

describe('the order tenants are locked in', () => {
  it('is byte order (Postgres COLLATE "C"), for every kind of character a tenant id may hold', () => {
    const ids = ['b-1', 'B_1', 'a', 'A', '0', 'z9', 'Z-', 'a_b', 'a-b', 'ab', '9z', PROVIDER_TENANT_ID, 'tenant-10', 'tenant-9'];
    const byBytes = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...ids].sort(compareTenantIds)).toEqual(byBytes);
    expect(compareTenantIds('same', 'same')).toBe(0);
  });
});
