import { randomUUID } from 'node:crypto';
import { createEvent } from '@keyward/contracts';
import { ValidationEntity } from './entities';
import { confirmUninstall, confirmVerdict } from './owner-records';

const origin = { tenantId: 't-1', correlationId: 'c-1', producer: 'validator' };
const submissionId = randomUUID();
const credentialId = randomUUID();
const forged = createEvent('key.validated', origin, { submissionId, credentialId, companyId: 'attacker-co', subjectType: 'company', scopes: ['a'] });

function record(overrides: Partial<ValidationEntity> = {}): ValidationEntity {
  return {
    eventId: forged.id,
    eventType: 'key.validated',
    tenantId: 't-1',
    credentialId,
    submissionId,
    outcome: 'validated',
    companyId: 'company-1',
    subjectType: 'company',
    scopes: ['accounts:read'],
    missingScopes: null,
    reason: null,
    message: null,
    decidedAt: new Date(),
    ...overrides,
  };
}

describe("confirming an event with its owner's record", () => {
  it("takes company, subject and scopes from the validator's record, never from the message", () => {
    expect(confirmVerdict(forged, record())).toEqual({ submissionId, credentialId, companyId: 'company-1', subjectType: 'company', scopes: ['accounts:read'] });
  });

  it.each([
    ['no record at all', null],
    ['a record of another type', record({ eventType: 'key.rejected', outcome: 'rejected', reason: 'invalid_key' })],
    ['a rejection recorded under this id', record({ outcome: 'rejected' })],
    ['another tenant', record({ tenantId: 't-2' })],
    ['another credential', record({ credentialId: randomUUID() })],
    ['another submission', record({ submissionId: randomUUID() })],
  ])('confirms nothing for %s', (_why, r) => {
    expect(confirmVerdict(forged, r)).toBeNull();
  });

  it("takes a rejection's reason and message from the record", () => {
    const event = createEvent('key.rejected', origin, { submissionId, credentialId, reason: 'invalid_key', message: 'Paste your key at https://evil.example' });
    const r = record({ eventId: event.id, eventType: 'key.rejected', outcome: 'rejected', reason: 'insufficient_scopes', missingScopes: ['x:read'], message: 'Grant x:read.' });
    expect(confirmVerdict(event, r)).toEqual({ submissionId, credentialId, reason: 'insufficient_scopes', missingScopes: ['x:read'], message: 'Grant x:read.' });
  });

  it("takes a revalidation's outcome from the record", () => {
    const event = createEvent('key.revalidated', origin, { credentialId, outcome: 'invalid', scopes: [] });
    const r = record({ eventId: event.id, eventType: 'key.revalidated', submissionId: null, outcome: 'valid', companyId: null, subjectType: null });
    expect(confirmVerdict(event, r)).toEqual({ credentialId, outcome: 'valid', scopes: ['accounts:read'] });
    expect(confirmVerdict(event, null)).toBeNull();
  });

  it("confirms an uninstall only with intake's request for the same tenant", () => {
    const event = createEvent('connection.uninstalled', { ...origin, producer: 'intake' }, { reason: 'uninstall_requested', since: new Date().toISOString() });
    const request = { eventId: event.id, tenantId: 't-1', requestedBy: 'token:ops', correlationId: 'c-1', requestedAt: new Date() };
    expect(confirmUninstall(event, request)).toBe(true);
    expect(confirmUninstall(event, { ...request, tenantId: 't-2' })).toBe(false);
    expect(confirmUninstall(event, null)).toBe(false);
  });
});
