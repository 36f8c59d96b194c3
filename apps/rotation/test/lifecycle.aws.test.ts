import { emulatorEnvFor, SecretsManagerEmulator } from '@keyward/testing';
import { lifecycleScenarios } from './lifecycle-scenarios';
import { RotationHarness } from './rotation-harness';

describe('rotation lifecycle with the aws secret backend (Secrets Manager emulator)', () => {
  let emulator: SecretsManagerEmulator;
  let harness: RotationHarness;

  beforeAll(async () => {
    emulator = await SecretsManagerEmulator.start();
    // The SDK's default credential chain, as rotation's IAM role provides them in production;
    // the emulator evaluates deploy/iam/rotation.json for every call rotation makes.
    const env = emulatorEnvFor('rotation', emulator.endpoint);
    process.env.AWS_ACCESS_KEY_ID = env.AWS_ACCESS_KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY = env.AWS_SECRET_ACCESS_KEY;
    harness = await new RotationHarness('aws', { AWS_ENDPOINT_URL_SECRETS_MANAGER: emulator.endpoint, AWS_REGION: env.AWS_REGION }).start();
  }, 60_000);

  afterAll(async () => {
    await harness?.stop();
    await emulator?.stop();
  });

  lifecycleScenarios(() => harness);
});
