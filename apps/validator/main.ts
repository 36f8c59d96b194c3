import { startService } from '@keyward/bootstrap';
import { validationRetryPolicy } from './validation-retry-policy';
import { VALIDATOR } from './validator-identity';
import { ValidatorModule } from './validator.module';

void startService(VALIDATOR.name, (config) => ({
  module: ValidatorModule.forRoot(),
  consumes: VALIDATOR.consumer,
  retry: validationRetryPolicy(config),
}));
