import { DynamicModule, Module } from '@nestjs/common';
import { AlertDeliveryRepository } from './alert-delivery.repository';
import { AlertDeliveryWorker } from './alert-delivery.worker';
import { ConnectionHealthService } from './connection-health.service';
import { MonitorEventsHandler } from './monitor.handler';
import { MonitorMetrics } from './monitor-metrics';
import { DEFAULT_MONITOR_TIMINGS, MONITOR_TIMINGS, MonitorTimings } from './monitor-options';
import { ProbeScheduler } from './probe-scheduler.service';
import { ProviderIncidentService } from './provider-incident.service';

/** Auth-failure handling, provider incidents, scheduled probes and alert webhooks. */
@Module({
  controllers: [MonitorEventsHandler],
  providers: [
    MonitorMetrics,
    ProviderIncidentService,
    ConnectionHealthService,
    ProbeScheduler,
    AlertDeliveryRepository,
    AlertDeliveryWorker,
    { provide: MONITOR_TIMINGS, useValue: DEFAULT_MONITOR_TIMINGS },
  ],
})
export class MonitorModule {
  /** The same module with shorter loop timings (tests, benchmarks); dynamic providers override the static ones. */
  static withTimings(overrides: Partial<MonitorTimings>): DynamicModule {
    return { module: MonitorModule, providers: [{ provide: MONITOR_TIMINGS, useValue: { ...DEFAULT_MONITOR_TIMINGS, ...overrides } }] };
  }
}
