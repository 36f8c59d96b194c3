import { SecretsManagerEmulator } from '@keyward/testing';
import { lifecycleScenarios } from './lifecycle-scenarios';
import { RotationHarness } from './rotation-harness';

describe('rotation lifecycle with the aws secret backend (Secrets Manager emulator)', () => {
  let emulator: SecretsManagerEmulator;
  let harness: RotationHarness;

  beforeAll(async () => {
    emulator = await SecretsManagerEmulator.start();
    // The SDK's default credential chain, as an IAM role would provide them in production.
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    harness = await new RotationHarness('aws', { AWS_ENDPOINT_URL_SECRETS_MANAGER: emulator.endpoint, AWS_REGION: 'eu-west-1' }).start();
  }, 60_000);

  afterAll(async () => {
    await harness?.stop();
    await emulator?.stop();
  });

  lifecycleScenarios(() => harness);
});
