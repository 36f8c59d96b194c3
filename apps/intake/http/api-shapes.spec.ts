import Ajv from 'ajv';
import { z } from 'zod';
import { loadConfig } from '@keyward/config';
import { apiShapes } from './api-shapes';
import { openApiDocumentOffline } from './openapi-offline';

const ID = '4f1c2a9e-7d1b-4c53-9a0e-2b8e5d6f7a10';
const AT = '2026-11-02T09:30:00.000Z';
const KEY = { last4: 'a1b2', masked: '••••••••a1b2' };
const PROBLEM = { code: 'pleo_unreachable', message: 'Pleo could not be reached.', action: 'No action needed.' };
const DELIVERY = {
  id: ID,
  type: 'alert.reconnection_required',
  tenantId: null,
  status: 'failed',
  attempts: 8,
  firstAttemptAt: AT,
  lastAttemptAt: AT,
  lastResponseStatus: 503,
  lastError: 'HTTP 503',
  redeliveryRequestedAt: null,
};

/** A valid example of every shape a route names (the shapes nested in them are covered through them). */
const EXAMPLES: Record<string, unknown> = {
  KeySubmissionBody: { apiKey: 'pleo-key-as-pasted' },
  InstallSessionRequest: { tenantId: 'acme-42', returnUrl: 'https://app.example.com/settings/pleo' },
  CompromiseReportDto: { credentialId: ID },
  ErrorBodyDto: { error: PROBLEM },
  SubmissionDto: {
    submissionId: ID,
    credentialId: ID,
    status: 'rejected',
    key: KEY,
    submittedAt: AT,
    reason: 'insufficient_scopes',
    missingScopes: ['users:read'],
    message: 'm',
    action: 'a',
    lastError: PROBLEM,
  },
  ConnectionDto: {
    tenantId: 'acme-42',
    status: 'pending_validation',
    companyId: 'company-1',
    subject: { type: 'company', id: 'company-1' },
    scopes: ['users:read'],
    key: KEY,
    activatedAt: AT,
    lastValidatedAt: null,
    health: { authFailures: 2, lastAuthFailureAt: AT, since: AT },
    error: { ...PROBLEM, missingScopes: ['users:read'] },
    pendingSubmission: { submissionId: ID, credentialId: ID, status: 'pending_validation', key: KEY, submittedAt: AT, lastError: null },
  },
  ConnectionCheckDto: { checkId: ID, status: 'completed', requestedAt: AT, outcome: 'rate_limited', checkedAt: AT, missingScopes: [], error: null },
  UninstallDto: { tenantId: 'acme-42', status: 'uninstalled', revokedCredentialIds: [ID] },
  CompromiseDto: { status: 'disabled', credentialId: ID, key: KEY },
  InstallSessionDto: { token: 'tok', tenantId: 'acme-42', expiresAt: AT, connectUrl: 'https://keyward.example.com/connect#session=tok', returnUrl: null },
  InstallSessionInfoDto: { tenantId: 'acme-42', expiresAt: AT, returnUrl: 'https://app.example.com/settings/pleo' },
  AuditLogDto: {
    tenantId: 'acme-42',
    entries: [{ seq: 1, occurredAt: AT, actor: 'token:billing', action: 'key.submitted', credentialId: ID, last4: 'a1b2', correlationId: null, details: { replacing: false } }],
    nextCursor: 's1',
    chain: { ok: true, entries: 1, verifiedThroughSeq: 1 },
  },
  AlertDeliveryDto: DELIVERY,
  AlertDeliveryListDto: { deliveries: [DELIVERY], nextCursor: null },
  ConnectionListDto: {
    connections: [{ tenantId: 'acme-42', status: 'reconnect_required', companyId: null, key: null, since: AT, lastValidatedAt: null, lastError: PROBLEM }],
    nextCursor: 'YWNtZS00Mg',
  },
};

type Schema = { required?: string[]; additionalProperties?: unknown };

/** OpenAPI 3.0's `nullable` as plain JSON Schema, the way clients generated from the document read it. */
function asJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(asJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const converted = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, asJsonSchema(value)]));
  return nullable ? { anyOf: [converted, { type: 'null' }] } : converted;
}

function refsIn(node: unknown): string[] {
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([key, value]) => (key === '$ref' && typeof value === 'string' ? [value] : refsIn(value)));
}

describe('the OpenAPI document and the zod schemas it is generated from', () => {
  let components: Record<string, Schema>;
  let paths: unknown;
  let ajv: Ajv;

  beforeAll(async () => {
    const doc = await openApiDocumentOffline(loadConfig('intake', { NODE_ENV: 'development' }));
    components = doc.components?.schemas as Record<string, Schema>;
    paths = doc.paths;
    ajv = new Ajv({ strict: false, validateFormats: false });
    ajv.addSchema({ components: { schemas: asJsonSchema(components) } }, 'openapi');
  });

  const valid = (id: string, value: unknown) => ajv.getSchema(`openapi#/components/schemas/${id}`)!(value) === true;

  it('has one component per registered shape, and every reference names one', () => {
    expect(Object.keys(components).sort()).toEqual([...apiShapes().keys()].sort());
    for (const ref of refsIn({ paths, components })) expect(Object.keys(components)).toContain(ref.replace('#/components/schemas/', ''));
  });

  it('requires exactly the fields zod requires, and refuses unknown fields exactly where zod does', () => {
    for (const [id, shape] of apiShapes()) {
      if (!(shape instanceof z.ZodObject)) continue;
      const required = Object.entries(shape.shape as Record<string, z.ZodType>)
        .filter(([, field]) => !field.safeParse(undefined).success)
        .map(([name]) => name);
      expect({ id, required: components[id].required ?? [] }).toEqual({ id, required });
      const strict = shape.safeParse({ surplus: 1 }).error?.issues.some((issue) => issue.code === 'unrecognized_keys') ?? false;
      expect({ id, strict: components[id].additionalProperties === false }).toEqual({ id, strict });
    }
  });

  it('accepts a valid example of every shape a route names by both, and without a required field by neither', () => {
    const named = new Set(refsIn(paths).map((ref) => ref.replace('#/components/schemas/', '')));
    expect([...named].filter((id) => !(id in EXAMPLES))).toEqual([]);
    for (const [id, example] of Object.entries(EXAMPLES)) {
      const shape = apiShapes().get(id)!;
      expect({ id, zod: shape.safeParse(example).success, openapi: valid(id, example) }).toEqual({ id, zod: true, openapi: true });
      for (const name of components[id].required ?? []) {
        const without = { ...(example as Record<string, unknown>) };
        delete without[name];
        expect({ id, name, zod: shape.safeParse(without).success, openapi: valid(id, without) }).toEqual({ id, name, zod: false, openapi: false });
      }
    }
  });

  it('refuses a value outside an enum, and a null where none is allowed, by both', () => {
    const submission = EXAMPLES.SubmissionDto as Record<string, unknown>;
    for (const wrong of [
      { ...submission, status: 'approved' },
      { ...submission, key: null },
    ]) {
      expect({ zod: apiShapes().get('SubmissionDto')!.safeParse(wrong).success, openapi: valid('SubmissionDto', wrong) }).toEqual({ zod: false, openapi: false });
    }
    const connection = EXAMPLES.ConnectionDto as Record<string, unknown>;
    const nulls = { ...connection, subject: null, key: null, error: null, pendingSubmission: null, companyId: null };
    expect({ zod: apiShapes().get('ConnectionDto')!.safeParse(nulls).success, openapi: valid('ConnectionDto', nulls) }).toEqual({ zod: true, openapi: true });
  });
});
