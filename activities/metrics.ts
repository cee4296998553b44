/**
 * The worker's own Prometheus series (prom-client): provider calls and the sweepers, on the process's registry
 * (built in `system/`, one per process, served by the worker's health server at `/metrics`). Labels are
 * bounded: provider names are adapters' and configured compute providers', steps a fixed set; never an
 * instance id, a name or a URL (docs/operators.md, "Metrics").
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import {
  ProviderConflictError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../contracts/provider-errors';
import { ComputeRejectedError } from './compute/types';

/** What a provider call does. */
export type ProviderStep = 'create' | 'restart' | 'destroy' | 'list';

/** How a provider call failed (`convos_provider_errors_total{kind}`). */
export type ProviderErrorKind =
  | 'rejected'
  | 'rate_limited'
  | 'unavailable'
  | 'not_found'
  | 'conflict'
  | 'cancelled'
  | 'other';

export interface ActivityMetrics {
  providerCalls: Counter<'provider' | 'step'>;
  providerErrors: Counter<'provider' | 'step' | 'kind'>;
  providerDuration: Histogram<'provider' | 'step'>;
  reconcileRuns: Counter<'outcome'>;
  healthPasses: Counter<'outcome'>;
  healthChecks: Counter<'result'>;
  healthSignals: Counter;
}

/** Where a provider call is counted: the metrics (none: not counted), the provider and the step. */
export interface ProviderCallLabels {
  metrics?: ActivityMetrics | undefined;
  provider: string;
  step: ProviderStep;
}

const byRegistry = new WeakMap<Registry, ActivityMetrics>();

/** The worker's series on `registry`, registered once. */
export function activityMetrics(registry: Registry): ActivityMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: ActivityMetrics = {
    providerCalls: new Counter({
      name: 'convos_provider_calls_total',
      help: 'Calls to a compute or resource provider, by provider and step (each attempt counts)',
      labelNames: ['provider', 'step'],
      registers,
    }),
    providerErrors: new Counter({
      name: 'convos_provider_errors_total',
      help: 'Provider calls that failed, by provider, step and kind',
      labelNames: ['provider', 'step', 'kind'],
      registers,
    }),
    providerDuration: new Histogram({
      name: 'convos_provider_call_duration_seconds',
      help: 'How long provider calls took, by provider and step',
      labelNames: ['provider', 'step'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    reconcileRuns: new Counter({
      name: 'convos_reconcile_runs_total',
      help: 'Sweeper (reconcile) runs by outcome: ok, partial (a provider could not be swept), failed',
      labelNames: ['outcome'],
      registers,
    }),
    healthPasses: new Counter({
      name: 'convos_health_sweep_passes_total',
      help: 'Health sweeper passes over a shard by outcome: ok, failed (the read model did not answer)',
      labelNames: ['outcome'],
      registers,
    }),
    healthChecks: new Counter({
      name: 'convos_health_checks_total',
      help: 'Runtime health checks by the health sweeper, by result: ready, unready',
      labelNames: ['result'],
      registers,
    }),
    healthSignals: new Counter({
      name: 'convos_health_signals_total',
      help: 'Health changes the sweeper signalled to instance workflows',
      registers,
    }),
  };
  // Zeros from the start: the sweeper alerts have a series before the first failure.
  for (const outcome of ['ok', 'partial', 'failed']) metrics.reconcileRuns.inc({ outcome }, 0);
  for (const outcome of ['ok', 'failed']) metrics.healthPasses.inc({ outcome }, 0);
  for (const result of ['ready', 'unready']) metrics.healthChecks.inc({ result }, 0);
  metrics.healthSignals.inc(0);
  byRegistry.set(registry, metrics);
  return metrics;
}

export function providerErrorKind(err: unknown, cancelled: boolean): ProviderErrorKind {
  if (cancelled) return 'cancelled';
  if (err instanceof ProviderRejectedError || err instanceof ComputeRejectedError) return 'rejected';
  if (err instanceof ProviderRateLimitedError) return 'rate_limited';
  if (err instanceof ProviderUnavailableError) return 'unavailable';
  if (err instanceof ProviderNotFoundError) return 'not_found';
  if (err instanceof ProviderConflictError) return 'conflict';
  return 'other';
}
