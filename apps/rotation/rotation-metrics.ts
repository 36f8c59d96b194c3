import { Inject, Injectable } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { Metrics } from '@keyward/observability';

/** Lifecycle counters. Labels are outcomes and reasons, never tenants or credentials. */
@Injectable()
export class RotationMetrics {
  readonly activations: Counter<string>;
  readonly rejections: Counter<string>;
  readonly compromises: Counter<string>;
  readonly uninstalls: Counter<string>;
  readonly conflicts: Counter<string>;
  readonly unchanged: Counter<string>;
  readonly unconfirmed: Counter<string>;

  constructor(@Inject(Metrics) metrics: Metrics) {
    this.activations = metrics.counter('keyward_rotation_activations_total', 'Credentials activated', ['kind']);
    this.rejections = metrics.counter('keyward_rotation_rejections_total', 'Credentials recorded as rejected', ['reason']);
    this.compromises = metrics.counter('keyward_rotation_compromises_total', 'Compromise reports handled', ['outcome']);
    this.uninstalls = metrics.counter('keyward_rotation_uninstalls_total', 'Connections uninstalled');
    this.conflicts = metrics.counter('keyward_rotation_secret_conflicts_total', 'AWSCURRENT was not where the database expected it', ['resolution']);
    this.unconfirmed = metrics.counter('keyward_events_unconfirmed_total', "Events ignored because their owner's table has no record of them (forged or misrouted)", ['type']);
    this.unchanged = metrics.counter('keyward_rotation_unchanged_total', 'Events that changed nothing (stale, superseded, repeated)', ['event', 'why']);
  }
}
