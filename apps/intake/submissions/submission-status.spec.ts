import { SubmissionRecord, submissionView } from './submission-status';

const base: SubmissionRecord = {
  id: '11111111-1111-4111-8111-111111111111',
  tenantId: 't-1',
  credentialId: '22222222-2222-4222-8222-222222222222',
  last4: 'a1b2',
  fingerprint: 'f'.repeat(64),
  createdAt: new Date('2025-01-01T00:00:00Z'),
  supersededAt: null,
  credentialStatus: null,
  rejectionReason: null,
  rejectionDetail: null,
  lastErrorCode: null,
  parkedAt: null,
};

describe('submission status (derived)', () => {
  it('is pending without a decision, with the key as last4 and masked only', () => {
    expect(submissionView(base)).toEqual({
      submissionId: base.id,
      credentialId: base.credentialId,
      status: 'pending_validation',
      key: { last4: 'a1b2', masked: '••••••••a1b2' },
      submittedAt: '2025-01-01T00:00:00.000Z',
    });
  });

  it('says why it is still pending when Pleo is unreachable, and when checking gave up', () => {
    expect(submissionView({ ...base, lastErrorCode: 'pleo_unreachable' }).lastError?.code).toBe('pleo_unreachable');
    expect(submissionView({ ...base, lastErrorCode: 'pleo_unreachable', parkedAt: new Date() }).lastError?.code).toBe('validation_gave_up');
  });

  it('is superseded before anything else', () => {
    expect(submissionView({ ...base, supersededAt: new Date(), credentialStatus: 'rejected' }).status).toBe('superseded');
  });

  it('is accepted once active, and stays accepted when later invalidated', () => {
    expect(submissionView({ ...base, credentialStatus: 'active' }).status).toBe('accepted');
    expect(submissionView({ ...base, credentialStatus: 'invalidated' }).status).toBe('accepted');
  });

  it('is rejected with the reason, missing scopes, message and action', () => {
    const view = submissionView({ ...base, credentialStatus: 'rejected', rejectionReason: 'insufficient_scopes', rejectionDetail: { missingScopes: ['users:read'] } });
    expect(view).toMatchObject({
      status: 'rejected',
      reason: 'insufficient_scopes',
      missingScopes: ['users:read'],
      message: 'This API key is missing permissions the integration needs.',
      action: expect.stringContaining('Reinstall'),
    });
  });
});
