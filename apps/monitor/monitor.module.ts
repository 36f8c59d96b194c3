import { DynamicModule, Module } from '@nestjs/common';
import { AlertDeliveryRepository } from './alert-delivery.repository';
import { AlertDeliveryWorker } from './alert-delivery.worker';
import { AuthFailureBatchService } from './auth-failure-batch.service';
import { ConnectionHealthRepository } from './connection-health.repository';
import { ConnectionHealthService } from './connection-health.service';
import { HealthLifecycleService } from './health-lifecycle.service';
import { LifecycleFactsRepository } from './lifecycle-facts.repository';
import { MonitorEventsHandler } from './monitor.handler';
import { MonitorMetrics } from './monitor-metrics';
import { DEFAULT_MONITOR_TIMINGS, MONITOR_TIMINGS, MonitorTimings } from './monitor-options';
import { ProbeScheduler } from './probe-scheduler.service';
import { ProviderIncidentRepository } from './provider-incident.repository';
import { ProviderIncidentService } from './provider-incident.service';

/**
 * Auth-failure handling, provider incidents, scheduled probes and alert webhooks. The rules are in
 * `health-decisions.ts`; the repositories are the only writers of the monitor's tables.
 */
@Module({
  controllers: [MonitorEventsHandler],
  providers: [
    MonitorMetrics,
    ConnectionHealthRepository,
    ProviderIncidentRepository,
    AlertDeliveryRepository,
    LifecycleFactsRepository,
    ProviderIncidentService,
    HealthLifecycleService,
    ConnectionHealthService,
    AuthFailureBatchService,
    ProbeScheduler,
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
