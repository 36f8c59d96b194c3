import { randomUUID } from 'node:crypto';
import { Test } from '@nestjs/testing';
import { ConfigModule } from '@keyward/config';
import { ApiKey } from '@keyward/key-material';
import { HealthChecks, ObservabilityModule } from '@keyward/observability';
import { PersistenceModule } from '@keyward/persistence';
import { canaryKey, captureLogs, createTestDatabase, EMULATOR_CREDENTIALS, SecretsManagerEmulator, testConfig, TestDatabase } from '@keyward/testing';
import { SecretReader } from './secret-reader';
import { SECRET_STORE, SecretStore } from './secret-store';
import { SecretsModule } from './secrets.module';

describe('SecretsModule.forRoot()', () => {
  let db: TestDatabase;
  let emulator: SecretsManagerEmulator;
  beforeAll(async () => {
    db = await createTestDatabase();
    emulator = await SecretsManagerEmulator.start();
  });
  afterAll(async () => {
    await emulator?.stop();
    await db?.drop();
  });

  it.each([
    ['local', {}],
    ['aws', { KEYWARD_SECRETS_BACKEND: 'aws' }],
  ])('provides the %s backend, the reader and the secrets readiness check', async (backend, env) => {
    const config = testConfig('rotation', {
      databaseUrl: db.url,
      prefix: 'unused',
      ...env,
      ...(backend === 'aws' ? { AWS_ENDPOINT_URL_SECRETS_MANAGER: emulator.endpoint } : {}),
    });
    // The SDK's default credential chain reads these; set only for this case.
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    // Unrestricted: this one module stands in for intake (putPending), rotation and the validator.
    if (backend === 'aws') Object.assign(process.env, { AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.unrestricted.accessKeyId, AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.unrestricted.secretAccessKey });
    const logs = captureLogs();
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(config), ObservabilityModule.forRoot(logs.logger, 'rotation'), PersistenceModule.forRoot(), SecretsModule.forRoot()],
    }).compile();
    try {
      const store = moduleRef.get<SecretStore>(SECRET_STORE);
      const reader = moduleRef.get(SecretReader);
      expect(store.backend).toBe(backend);
      const tenantId = `module-${backend}`;
      const credentialId = randomUUID();
      const value = canaryKey();
      await store.putPending(tenantId, credentialId, ApiKey.fromTrusted(value));
      await store.promote(tenantId, credentialId, null);
      expect((await reader.readForUse(tenantId, credentialId)).reveal()).toBe(value);
      expect(reader.cachedCount).toBe(1);
      await store.disable(tenantId, credentialId);
      expect(reader.cachedCount).toBe(0); // dropped by the store's disable
      await expect(reader.readForUse(tenantId, credentialId)).rejects.toMatchObject({ code: 'disabled' });
      const readiness = await moduleRef.get(HealthChecks).readiness();
      expect(readiness.checks.secrets).toEqual({ ok: true });
      expect(logs.text()).not.toContain(value);
    } finally {
      await moduleRef.close();
      if (backend === 'aws') {
        process.env.AWS_ACCESS_KEY_ID = saved.id;
        process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
        if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
        if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      }
    }
  });
});
