import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { KeywardConfig } from '@keyward/config';
import { ApiKey } from '@keyward/key-material';
import { SECRET_STORE, SecretStore } from '@keyward/secrets';
import {
  CapturedLogs,
  captureLogs,
  connectionAsRotation,
  createTestDatabase,
  credentialAsRotation,
  dropTopology,
  EventTap,
  healthAsMonitor,
  revocationAsIntake,
  startTestService,
  submissionAsIntake,
  TestDatabase,
  testConfig,
  testPrefix,
} from '@keyward/testing';
import { RunningPleoSandbox, startPleoSandbox } from '../../pleo-sandbox/start-pleo-sandbox';
import { gatewayService } from '../gateway.definition';

export const SERVICE_TOKEN = 'dev-service-token';

export interface GatewayInstance {
  app: INestApplication;
  config: KeywardConfig;
  logs: CapturedLogs;
  url: string;
  close(): Promise<void>;
}

export interface GatewayHarness {
  db: TestDatabase;
  prefix: string;
  sandbox: RunningPleoSandbox;
  tap: EventTap;
  gateway: GatewayInstance;
  /** Every answer body and header the gateway gave, for the canary search. */
  answers: string[];
  /** Another gateway replica on the same database, exchange and sandbox. */
  startReplica(env?: Record<string, string>): Promise<GatewayInstance>;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
}

/** The gateway as it runs (same module, same HTTP set-up) on its own database and exchange, in front of an in-process sandbox. */
export async function startGatewayHarness(env: Record<string, string> = {}, sandboxRatePerMinute = 600): Promise<GatewayHarness> {
  const db = await createTestDatabase();
  const prefix = testPrefix();
  const sandbox = await startPleoSandbox({ port: 0, ratePerMinute: sandboxRatePerMinute });
  const tap = await new EventTap(prefix).start();
  const answers: string[] = [];
  const replicas: GatewayInstance[] = [];
  const startReplica = async (extra: Record<string, string> = {}): Promise<GatewayInstance> => {
    const config = testConfig('gateway', { databaseUrl: db.url, prefix, PLEO_API_BASE_URL: sandbox.url, LOG_LEVEL: 'debug', ...env, ...extra });
    const logs = captureLogs('gateway');
    const app = await startTestService(gatewayService(), config, logs.logger);
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    const instance = { app, config, logs, url: `http://127.0.0.1:${port}`, close: () => app.close() };
    replicas.push(instance);
    return instance;
  };
  const gateway = await startReplica();
  return {
    db,
    prefix,
    sandbox,
    tap,
    gateway,
    answers,
    startReplica,
    close: async () => {
      await tap.stop();
      for (const r of replicas) await r.close();
      await sandbox.close();
      await dropTopology(prefix);
      await db.drop();
    },
  };
}

/** One HTTP call with full control of the headers (hop-by-hop ones included), body as given. */
export function call(
  h: GatewayHarness,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[]; instance?: GatewayInstance; token?: string | null } = {},
): Promise<Answer> {
  const instance = options.instance ?? h.gateway;
  const headers: Record<string, string> = { ...(options.token === null ? {} : { authorization: `Bearer ${options.token ?? SERVICE_TOKEN}` }), ...options.headers };
  return new Promise<Answer>((resolve, reject) => {
    // A path, not a URL: a URL would be normalised (`..` resolved) before it left the test.
    const { hostname, port } = new URL(instance.url);
    const req = httpRequest({ host: hostname, port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        h.answers.push(text.length > 100_000 ? text.slice(0, 100_000) : text, JSON.stringify(res.headers));
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunks) {
      for (const c of options.chunks) req.write(c);
      req.end();
    } else req.end(options.body);
  });
}

export interface SeededTenant {
  tenantId: string;
  credentialId: string;
  key: { id: string; apiKey: string; companyId: string };
}

let counter = 0;

/**
 * A tenant as rotation leaves it after activating a key the sandbox issued: the key is the
 * secret's AWSCURRENT, the connection row points at its credential, with optional health.
 */
export async function seedTenant(
  h: GatewayHarness,
  options: { lifecycle?: 'active' | 'disabled' | 'uninstalled' | 'not_connected'; health?: 'healthy' | 'degraded' | 'reconnect_required'; scopes?: string[] } = {},
): Promise<SeededTenant> {
  counter += 1;
  const tenantId = `gw-${process.pid}-${Date.now().toString(36)}-${counter}`;
  const key = h.sandbox.state.issueKey({ scopes: options.scopes });
  const credentialId = randomUUID();
  const store = h.gateway.app.get<SecretStore>(SECRET_STORE);
  await store.putPending(tenantId, credentialId, ApiKey.fromTrusted(key.apiKey));
  await store.promote(tenantId, credentialId, null);
  const { submissionId } = await submissionAsIntake(h.db, { tenantId, credentialId, last4: key.apiKey.slice(-4), fingerprint: 'f'.repeat(64) });
  await credentialAsRotation(h.db, submissionId, { status: 'active', companyId: key.subjectId, scopes: key.scopes });
  await connectionAsRotation(h.db, { tenantId, status: options.lifecycle ?? 'active', companyId: key.subjectId, activeCredentialId: credentialId });
  if (options.health) await healthAsMonitor(h.db, { tenantId, credentialId, state: options.health });
  return { tenantId, credentialId, key: { id: key.id, apiKey: key.apiKey, companyId: key.subjectId } };
}

/** What intake's compromise call commits before it answers. */
export async function revokeAsIntake(h: GatewayHarness, tenant: SeededTenant, reason: 'compromised' | 'uninstalled' = 'compromised'): Promise<void> {
  await revocationAsIntake(h.db, { credentialId: tenant.credentialId, tenantId: tenant.tenantId, reason });
}

export const pleoPath = (tenantId: string, path: string) => `/v1/tenants/${tenantId}/pleo/api${path}`;
