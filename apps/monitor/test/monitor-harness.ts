import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { ServiceDefinition } from '@keyward/bootstrap';
import { KeywardConfig } from '@keyward/config';
import { causedBy, createEvent, EventEnvelope, RevalidationOutcome } from '@keyward/contracts';
import {
  CapturedLogs,
  captureLogs,
  connectionAsRotation,
  credentialAsRotation,
  publishExternal,
  recordAsOwner,
  replaceAsRotation,
  startTestService,
  submissionAsIntake,
  TestDatabase,
  testConfig,
} from '@keyward/testing';
import { MonitorModule } from '../monitor.module';
import { monitorDefinition } from '../monitor.definition';
import { MonitorTimings } from '../monitor-options';

const REQUIRED_SCOPES = 'accounts:read export-jobs:write';

export interface MonitorInstance {
  app: INestApplication;
  config: KeywardConfig;
  logs: CapturedLogs;
  close(): Promise<void>;
}

/** A monitor as deployed (transport, relay, scheduler, webhook worker), on the test's DB and prefix. */
export async function startMonitor(db: TestDatabase, prefix: string, env: Record<string, string> = {}, timings: Partial<MonitorTimings> = {}): Promise<MonitorInstance> {
  const config = testConfig('monitor', { databaseUrl: db.url, prefix, PLEO_REQUIRED_SCOPES: REQUIRED_SCOPES, LOG_LEVEL: 'info', ...env });
  const definition: ServiceDefinition = monitorDefinition(MonitorModule.withTimings({ schedulerTickMs: 200, deliveryPollMs: 100, ...timings }));
  const logs = captureLogs('monitor');
  const app = await startTestService(definition, config, logs.logger);
  return { app, config, logs, close: () => app.close() };
}

export interface SeededConnection {
  tenantId: string;
  credentialId: string;
  companyId: string;
  last4: string;
}

/** An active connection with its active credential, written as rotation writes them. */
export async function seedActiveConnection(db: TestDatabase, overrides: Partial<SeededConnection> = {}): Promise<SeededConnection> {
  const seeded: SeededConnection = {
    tenantId: `t-${randomBytes(6).toString('hex')}`,
    credentialId: randomUUID(),
    companyId: randomUUID(),
    last4: randomBytes(2).toString('hex'),
    ...overrides,
  };
  const { submissionId } = await submissionAsIntake(db, { tenantId: seeded.tenantId, credentialId: seeded.credentialId, last4: seeded.last4 });
  await credentialAsRotation(db, submissionId, { status: 'active', companyId: seeded.companyId, scopes: REQUIRED_SCOPES.split(' '), activatedMinutesAgo: 60 });
  await connectionAsRotation(db, { tenantId: seeded.tenantId, status: 'active', companyId: seeded.companyId, activeCredentialId: seeded.credentialId, activatedMinutesAgo: 60 });
  return seeded;
}

/** Rotation replacing the active key: the old credential invalidated, the new one active. */
export async function rotateTo(db: TestDatabase, connection: SeededConnection): Promise<SeededConnection> {
  await replaceAsRotation(db, connection.credentialId);
  return seedActiveConnection(db, { tenantId: connection.tenantId, companyId: connection.companyId, credentialId: randomUUID(), last4: randomBytes(2).toString('hex') });
}

/** auth.failed as another backend of the integration publishes it. */
export function authFailed(tenantId: string, status: 401 | 403 = 401, credentialId?: string): EventEnvelope<'auth.failed'> {
  return createEvent(
    'auth.failed',
    { tenantId, correlationId: `sync-${randomUUID()}`, producer: 'expense-sync' },
    {
      ...(credentialId ? { credentialId } : {}),
      status,
      source: 'expense-sync',
      endpoint: '/v1/expenses',
      observedAt: new Date().toISOString(),
    },
  );
}

/** key.revalidated as the validator answers a key.revalidate. */
export function revalidated(
  request: EventEnvelope<'key.revalidate'>,
  outcome: RevalidationOutcome,
  scopes: string[] = REQUIRED_SCOPES.split(' '),
  missingScopes?: string[],
): EventEnvelope<'key.revalidated'> {
  return createEvent('key.revalidated', causedBy(request, 'validator'), {
    credentialId: request.data.credentialId,
    outcome,
    scopes,
    ...(missingScopes ? { missingScopes } : {}),
  });
}

/** The validator's answer as it reaches the monitor: its verdict recorded, then the event relayed. */
export async function publishRevalidated(db: TestDatabase, prefix: string, event: EventEnvelope<'key.revalidated'>): Promise<void> {
  await recordAsOwner(db, event);
  await publishExternal(prefix, event);
}

export function health(db: TestDatabase, tenantId: string) {
  return db
    .query<{
      credential_id: string;
      state: string;
      reason: string | null;
      missing_scopes: string[] | null;
      auth_failures: number;
      last_auth_failure_at: Date | null;
      since: Date;
      last_validated_at: Date | null;
      next_probe_at: Date | null;
    }>(`SELECT * FROM connection_health WHERE tenant_id = $1`, [tenantId])
    .then((rows) => rows[0]);
}

export async function failureRows(db: TestDatabase, tenantId: string): Promise<{ counts_against_active: boolean }[]> {
  return db.query(`SELECT counts_against_active FROM auth_failures WHERE tenant_id = $1`, [tenantId]);
}

/** The alert webhook's signing secret in these suites. */
export const WEBHOOK_SECRET = `whsec_${Buffer.from('alert-webhook-test-secret-0123456789').toString('base64')}`;

export interface WebhookCall {
  body: string;
  headers: Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string>;
  eventId: string | undefined;
  attempt: string | undefined;
}

/** A local receiver that fails the first two attempts of every alert, then accepts. */
export function startWebhookReceiver(): Promise<{ server: Server; url: string; calls: WebhookCall[] }> {
  const calls: WebhookCall[] = [];
  const seen = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const eventId = req.headers['x-keyward-event-id'] as string | undefined;
      calls.push({
        body: Buffer.concat(chunks).toString('utf8'),
        headers: {
          'webhook-id': String(req.headers['webhook-id']),
          'webhook-timestamp': String(req.headers['webhook-timestamp']),
          'webhook-signature': String(req.headers['webhook-signature']),
        },
        eventId,
        attempt: req.headers['x-keyward-delivery-attempt'] as string | undefined,
      });
      const n = (seen.get(eventId ?? '') ?? 0) + 1;
      seen.set(eventId ?? '', n);
      res.statusCode = n <= 2 ? 500 : 200;
      res.end(n <= 2 ? 'temporarily broken' : 'ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/keyward-alerts`, calls })));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
