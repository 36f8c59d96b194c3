import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { EventEnvelope } from '@keyward/contracts';
import { AmqpEventContext } from '@keyward/messaging';
import { RevalidationService } from './revalidation.service';
import { SubmissionValidationService } from './submission-validation.service';

/** The validator's events: a submitted key to prove, an active key to check again. */
@Controller()
export class ValidationHandler {
  constructor(
    @Inject(SubmissionValidationService) private readonly submissions: SubmissionValidationService,
    @Inject(RevalidationService) private readonly revalidation: RevalidationService,
  ) {}

  @EventPattern('key.submitted')
  async onKeySubmitted(@Payload() event: EventEnvelope<'key.submitted'>, @Ctx() ctx: AmqpEventContext): Promise<void> {
    await this.submissions.validate(event, ctx.delivery);
  }

  @EventPattern('key.revalidate')
  async onKeyRevalidate(@Payload() event: EventEnvelope<'key.revalidate'>): Promise<void> {
    await this.revalidation.revalidate(event);
  }
}
