import { DynamicModule, Module } from '@nestjs/common';
import { PleoModule, PleoModuleOptions } from '@keyward/pleo';
import { SecretsModule } from '@keyward/secrets';
import { RevalidationService } from './revalidation.service';
import { SubmissionValidationService } from './submission-validation.service';
import { ValidationHandler } from './validation.handler';
import { ValidationRepository } from './validation.repository';

export interface ValidatorModuleOptions {
  pleo?: PleoModuleOptions;
}

@Module({})
export class ValidatorModule {
  static forRoot(options: ValidatorModuleOptions = {}): DynamicModule {
    return {
      module: ValidatorModule,
      imports: [SecretsModule.forRoot(), PleoModule.forRoot(options.pleo)],
      controllers: [ValidationHandler],
      providers: [ValidationRepository, SubmissionValidationService, RevalidationService],
      exports: [SubmissionValidationService, RevalidationService],
    };
  }
}
