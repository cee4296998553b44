/**
 * The process's one Prometheus registry (prom-client), built by the composition root (`openSystem`) and handed
 * to what records into it: the API (`api/metrics.ts`, served at `GET /metrics`), the activities
 * (`activities/metrics.ts`, served by the worker's health server at `/metrics`). Never prom-client's global
 * default registry: a test process builds several systems, each with its own counts. Every series carries
 * `pool` (the pool's name, operator configuration, never secret). The Temporal SDK's own series are served
 * by core's exporter on WORKER_METRICS_HOST:WORKER_METRICS_PORT (`installTemporalRuntime`, system/logging.ts).
 *
 * Why prom-client rather than OpenTelemetry with a Prometheus exporter: a pull endpoint in the Prometheus
 * text format is what is asked for, and prom-client is the Node ecosystem's de-facto Prometheus client (what
 * Fastify's metrics plugins build on); OpenTelemetry would add an SDK, a meter provider and an exporter
 * server for the same text, and its Prometheus exporter renames series (units, `_total`).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Registry };

export function createRegistry(labels: { pool: string }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  // Process CPU, memory, event-loop lag, GC: `process_*` and `nodejs_*`.
  collectDefaultMetrics({ register: registry });
  return registry;
}
