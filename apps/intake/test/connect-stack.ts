import type { Server } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { KeywardConfig } from '@keyward/config';
import { CapturedLogs, captureLogs, createTestDatabase, dropTopology, EventTap, startTestService, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { monitorDefinition } from '../../monitor/monitor.definition';
import { MonitorModule } from '../../monitor/monitor.module';
import { RunningPleoSandbox, startPleoSandbox } from '../../pleo-sandbox/start-pleo-sandbox';
import { RotationModule } from '../../rotation/rotation.module';
import { validationRetryPolicy } from '../../validator/validation-retry-policy';
import { ValidatorModule } from '../../validator/validator.module';
import { intakeService } from '../intake.definition';
import { freePort } from '../../../libs/testing/src/free-port';

const SERVICE_TOKEN = 'dev-service-token';
const VALIDATOR_TIERS = [300, 600, 1000, 1500];

export interface ConnectStack {
  /** Intake's own URL (listening on a port, as a browser needs): also KEYWARD_PUBLIC_URL. */
  url: string;
  sandbox: RunningPleoSandbox;
  db: TestDatabase;
  prefix: string;
  logs: CapturedLogs;
  tap: EventTap;
  intakeConfig: KeywardConfig;
  /** Mints an install session as the integration's backend would. */
  mintSession(tenantId: string, returnUrl?: string): Promise<{ token: string; connectUrl: string; expiresAt: string }>;
  service(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/**
 * Real intake (listening), validator and rotation — and the monitor when asked — on one test
 * database and exchange, against the Pleo sandbox: what a browser on the connect page talks to.
 */
export async function startConnectStack(options: { monitor?: boolean; intakeEnv?: Record<string, string>; monitorEnv?: Record<string, string> } = {}): Promise<ConnectStack> {
  const db = await createTestDatabase();
  const prefix = testPrefix();
  const sandbox = await startPleoSandbox({ port: 0 });
  const logs = captureLogs('connect-stack');
  const common = { databaseUrl: db.url, prefix, PLEO_API_BASE_URL: sandbox.url, PLEO_REQUIRED_SCOPES: 'accounts:read export-jobs:write', PLEO_TIMEOUT_MS: '1000' };
  const apps: INestApplication[] = [];

  const validatorConfig = testConfig('validator', { ...common, PLEO_BREAKER_RESET_MS: '500' });
  apps.push(
    await startTestService(
      { module: ValidatorModule.forRoot({ pleo: { breaker: { resetTimeoutMs: 500 } } }), consumes: 'validator', retry: validationRetryPolicy(validatorConfig, VALIDATOR_TIERS) },
      validatorConfig,
      logs.logger.child({ service: 'validator' }),
    ),
  );
  apps.push(await startTestService({ module: RotationModule, consumes: 'rotation', retry: { tiersMs: [200, 400] } }, testConfig('rotation', common), logs.logger.child({ service: 'rotation' })));
  if (options.monitor) {
    const monitorConfig = testConfig('monitor', { ...common, ...options.monitorEnv });
    apps.push(
      await startTestService(
        monitorDefinition(MonitorModule.withTimings({ schedulerTickMs: 100, deliveryPollMs: 100, webhookBaseBackoffMs: 100, webhookMaxAttempts: 2 })),
        monitorConfig,
        logs.logger.child({ service: 'monitor' }),
      ),
    );
  }

  // The public URL is known before intake starts: listen on a port found free first.
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const intakeConfig = testConfig('intake', { ...common, KEYWARD_PUBLIC_URL: url, KEYWARD_CONNECT_RETURN_URLS: `${url}/health/`, ...options.intakeEnv });
  const intake = await startTestService(intakeService(intakeConfig), intakeConfig, logs.logger.child({ service: 'intake' }));
  await intake.listen(port, '127.0.0.1');
  apps.push(intake);
  const tap = await new EventTap(prefix).start();

  const service: ConnectStack['service'] = async (method, path, body, headers = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${SERVICE_TOKEN}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };

  return {
    url,
    sandbox,
    db,
    prefix,
    logs,
    tap,
    intakeConfig,
    service,
    mintSession: async (tenantId, returnUrl) => {
      const res = await service('POST', '/v1/install-sessions', { tenantId, ...(returnUrl ? { returnUrl } : {}) });
      if (res.status !== 201) throw new Error(`minting a session failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    close: async () => {
      await tap.stop();
      (intake.getHttpServer() as Server).closeAllConnections?.call(intake.getHttpServer());
      for (const app of apps.reverse()) await app.close();
      await sandbox.close();
      await dropTopology(prefix, VALIDATOR_TIERS);
      await db.drop();
    },
  };
}
