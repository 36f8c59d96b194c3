import { startService } from '@keyward/bootstrap';
import { validationRetryPolicy } from './validation-retry-policy';
import { ValidatorModule } from './validator.module';

void startService('validator', (config) => ({
  module: ValidatorModule.forRoot(),
  consumes: 'validator',
  retry: validationRetryPolicy(config),
}));
