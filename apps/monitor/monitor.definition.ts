import { DynamicModule, Type } from '@nestjs/common';
import { ServiceDefinition } from '@keyward/bootstrap';
import { MONITOR } from './monitor-identity';
import { MonitorModule } from './monitor.module';
import { unpublishedAlertsSweep } from './unpublished-alerts.sweep';

/**
 * The monitor as a service: it consumes the `monitor` queue, and because every handler's work is
 * in Postgres, deliveries that arrive together share one transaction (bursts of auth.failed).
 * main.ts, the tests and the benchmark all run this same definition. Two batches of up to 500 at
 * once (its prefetch, 1,000, fills both): one decided in Node while the other runs in Postgres, and
 * a batch's fixed costs (claim, statements, commit, ack) spread over many events (ADR 0052).
 */
export function monitorDefinition(module: Type<unknown> | DynamicModule = MonitorModule): ServiceDefinition {
  return { module, consumes: MONITOR.consumer, batch: { consumer: MONITOR.consumer, maxSize: 500, maxConcurrent: 2 }, reconcile: [unpublishedAlertsSweep] };
}
