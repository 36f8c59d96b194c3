import { Controller, DynamicModule, Get, Global, Header, Inject, Module, Res } from '@nestjs/common';
import type { Response } from 'express';
import { HealthChecks } from './health';
import { KeywardLogger } from './logger';
import { Metrics } from './metrics';

@Controller()
class OperationsController {
  constructor(
    @Inject(HealthChecks) private readonly health: HealthChecks,
    @Inject(Metrics) private readonly metrics: Metrics,
  ) {}

  @Get('health/live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('health/ready')
  async ready(@Res() res: Response): Promise<void> {
    const report = await this.health.readiness();
    res.status(report.ready ? 200 : 503).json({ status: report.ready ? 'ok' : 'unavailable', checks: report.checks });
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async scrape(@Res() res: Response): Promise<void> {
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.send(await this.metrics.registry.metrics());
  }
}

/** Logger, metrics and health for one service, with `/health/live`, `/health/ready`, `/metrics`. */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(logger: KeywardLogger, service: string): DynamicModule {
    return {
      module: ObservabilityModule,
      controllers: [OperationsController],
      providers: [
        { provide: KeywardLogger, useValue: logger },
        { provide: Metrics, useValue: new Metrics(service) },
        { provide: HealthChecks, useValue: new HealthChecks() },
      ],
      exports: [KeywardLogger, Metrics, HealthChecks],
    };
  }
}
