import { DynamicModule, Type } from '@nestjs/common';
import { ServiceDefinition } from '@keyward/bootstrap';
import { MONITOR } from './monitor-identity';
import { MonitorModule } from './monitor.module';
import { unpublishedAlertsSweep } from './unpublished-alerts.sweep';

/**
 * The monitor as a service: it consumes the `monitor` queue, and because every handler's work is
 * in Postgres, deliveries that arrive together share one transaction (bursts of auth.failed).
 * main.ts, the tests and the benchmark all run this same definition.
 */
export function monitorDefinition(module: Type<unknown> | DynamicModule = MonitorModule): ServiceDefinition {
  return { module, consumes: MONITOR.consumer, batch: { consumer: MONITOR.consumer, maxSize: 200, maxConcurrent: 6 }, reconcile: [unpublishedAlertsSweep] };
}
