import { Controller, DynamicModule, Get, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { ControlController } from './control.controller';
import { PleoApiController } from './pleo-api.controller';
import { RequestRecorderMiddleware } from './request-recorder.middleware';
import { SandboxState } from './sandbox-state';

@Controller('health')
class SandboxHealthController {
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }
}

@Module({})
export class PleoSandboxModule implements NestModule {
  static forRoot(state: SandboxState = new SandboxState()): DynamicModule {
    return {
      module: PleoSandboxModule,
      controllers: [PleoApiController, ControlController, SandboxHealthController],
      providers: [{ provide: SandboxState, useValue: state }, RequestRecorderMiddleware],
      exports: [SandboxState],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequestRecorderMiddleware).forRoutes(PleoApiController);
  }
}
