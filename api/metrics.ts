/**
 * The API's Prometheus series (prom-client), on the process's registry (built in `system/`, one per process;
 * an app built without one gets its own, so apps in one test process never share counts). Every series and
 * label is listed in docs/operators.md ("Metrics"); no label ever holds a secret, a user's value or an
 * instance id (labels are bounded sets named here).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LIVE_STATUSES, type LiveStatus } from '../contracts/instance-status';

/** How a claim the claim service answered ended (`convos_claim_duration_seconds{outcome}`). */
export type ClaimOutcome =
  | 'bound'
  | 'refused'
  | 'conflict'
  | 'rate_limited'
  | 'provision_failed'
  | 'no_idle'
  | 'pending'
  | 'error';

/** Why a claim request was refused before or by the claim service (`convos_claims_refused_total{reason}`). */
export type RefusalReason =
  | 'invalid_request'
  | 'unauthorized'
  | 'unknown_template'
  | 'join_url'
  | 'runtime'
  | 'idempotency_key_reused';

/** Which limit a 429/503 came from (`convos_claims_rate_limited_total{limit}`). */
export type RateLimit = 'client' | 'anonymous';

/** A provider that posts webhooks to the API, and what became of one delivery. */
export type WebhookProvider = 'agentmail' | 'telnyx' | 'railway' | 'openrouter' | 'other';
/**
 * 200s by the route's answer (`accepted`: new; `duplicate`: a provider's retry of an event already accepted;
 * `ignored`: nothing to deliver), then 409 `replayed` (a captured delivery sent again), 401 `unauthorized`,
 * other 4xx `rejected`, 5xx `failed`.
 */
export type WebhookOutcome =
  | 'accepted'
  | 'duplicate'
  | 'ignored'
  | 'replayed'
  | 'unauthorized'
  | 'rejected'
  | 'failed';

/** Seconds: a warm claim is tens of milliseconds to a few seconds; a waiting one up to 60 s. */
const CLAIM_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60];

export interface ApiMetrics {
  claimDuration: Histogram<'outcome' | 'warm'>;
  claimsInFlight: Gauge;
  claimsWaiting: Gauge;
  rateLimited: Counter<'limit'>;
  refused: Counter<'reason'>;
  webhookDeliveries: Counter<'provider' | 'outcome'>;
}

const byRegistry = new WeakMap<Registry, ApiMetrics>();

/** The API's counters on `registry`, registered once (a second app on the same registry shares them). */
export function apiMetrics(registry: Registry): ApiMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: ApiMetrics = {
    claimDuration: new Histogram({
      name: 'convos_claim_duration_seconds',
      help: 'Claims the claim service answered, by outcome and warm (bound to an instance idle when asked) or cold',
      labelNames: ['outcome', 'warm'],
      buckets: CLAIM_BUCKETS,
      registers,
    }),
    claimsInFlight: new Gauge({
      name: 'convos_claims_in_flight',
      help: 'Claim requests in the claim service right now',
      registers,
    }),
    claimsWaiting: new Gauge({
      name: 'convos_claims_waiting',
      help: 'Claims looking for an idle instance right now (waiting while the pool is empty)',
      registers,
    }),
    rateLimited: new Counter({
      name: 'convos_claims_rate_limited_total',
      help: 'Claim requests turned away by a limit: client (per client or address, 429) or anonymous (the anonymous budget, 503)',
      labelNames: ['limit'],
      registers,
    }),
    refused: new Counter({
      name: 'convos_claims_refused_total',
      help: 'Claim requests refused with a 4xx before anything was bound, by reason',
      labelNames: ['reason'],
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'convos_webhook_deliveries_total',
      help: 'Webhook deliveries received from providers, by provider and outcome',
      labelNames: ['provider', 'outcome'],
      registers,
    }),
  };
  // Zeros from the start, so rates and alerts have a series before the first event.
  for (const warm of ['true', 'false']) metrics.claimDuration.zero({ outcome: 'bound', warm });
  const unbound: ClaimOutcome[] = [
    'refused',
    'conflict',
    'rate_limited',
    'provision_failed',
    'no_idle',
    'pending',
    'error',
  ];
  for (const outcome of unbound) metrics.claimDuration.zero({ outcome, warm: 'none' });
  for (const limit of ['client', 'anonymous'] satisfies RateLimit[]) metrics.rateLimited.inc({ limit }, 0);
  const reasons: RefusalReason[] = [
    'invalid_request',
    'unauthorized',
    'unknown_template',
    'join_url',
    'runtime',
    'idempotency_key_reused',
  ];
  for (const reason of reasons) metrics.refused.inc({ reason }, 0);
  const webhookOutcomes: WebhookOutcome[] = [
    'accepted',
    'duplicate',
    'ignored',
    'replayed',
    'unauthorized',
    'rejected',
    'failed',
  ];
  // The providers whose webhooks the API serves (api/routes/webhooks.ts).
  for (const provider of ['agentmail', 'telnyx'] satisfies WebhookProvider[])
    for (const outcome of webhookOutcomes) metrics.webhookDeliveries.inc({ provider, outcome }, 0);
  byRegistry.set(registry, metrics);
  return metrics;
}

/** What the webhook routes call once per delivery (`convos_webhook_deliveries_total`). */
export function recordWebhookDelivery(
  registry: Registry,
  provider: WebhookProvider,
  outcome: WebhookOutcome,
): void {
  apiMetrics(registry).webhookDeliveries.inc({ provider, outcome });
}

interface ErrorLike {
  statusCode?: number;
  code?: string;
}

/** The histogram's outcome of a claim service error (an ApiError, or anything else: `error`). */
export function claimOutcomeOf(err: unknown): ClaimOutcome {
  const { statusCode, code } = (err ?? {}) as ErrorLike;
  if (code === 'ANONYMOUS_BUDGET_EXHAUSTED') return 'rate_limited';
  if (code === 'NO_IDLE_INSTANCE') return 'no_idle';
  if (code === 'CLAIM_PENDING') return 'pending';
  if (statusCode === 400) return 'refused';
  if (statusCode === 409) return 'conflict';
  if (statusCode === 429) return 'rate_limited';
  if (statusCode === 502) return 'provision_failed';
  return 'error';
}

const JOIN_URL_CODES = new Set(['JOIN_UNAVAILABLE', 'WRONG_ENVIRONMENT', 'BAD_INVITE']);

/** Counts a claim request's error in the rate-limited or refused counters (5xx are neither). */
export function countClaimRejection(metrics: ApiMetrics, err: unknown): void {
  const { statusCode, code } = (err ?? {}) as ErrorLike;
  if (code === 'ANONYMOUS_BUDGET_EXHAUSTED') return void metrics.rateLimited.inc({ limit: 'anonymous' });
  if (statusCode === 429) return void metrics.rateLimited.inc({ limit: 'client' });
  if (!statusCode || statusCode < 400 || statusCode >= 500) return;
  const reason: RefusalReason =
    statusCode === 401
      ? 'unauthorized'
      : code === 'UNKNOWN_TEMPLATE'
        ? 'unknown_template'
        : code && JOIN_URL_CODES.has(code)
          ? 'join_url'
          : code === 'CLAIM_REFUSED'
            ? 'runtime'
            : code === 'IDEMPOTENCY_KEY_REUSED'
              ? 'idempotency_key_reused'
              : 'invalid_request';
  // A 409 other than a reused key (a claim in progress) is not a refusal: the client retries it.
  if (statusCode === 409 && reason !== 'idempotency_key_reused') return;
  metrics.refused.inc({ reason });
}

/** One value shared by every caller for `ms` (a failed read is not kept). */
export function cached<T>(ms: number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null;
  return () => {
    if (!last || Date.now() - last.at > ms) {
      const value = read();
      const entry = { at: Date.now(), value };
      last = entry;
      value.catch(() => {
        if (last === entry) last = null;
      });
    }
    return last.value;
  };
}

/** What the pool gauges are read from on a scrape (each read cached: a scrape costs at most this much). */
export interface PoolSources {
  /** Live instances of this pool by status, from the read model (one `group by`). */
  counts: () => Promise<Record<LiveStatus, number>>;
  /** The pool workflow's state (a Query: billable), null when it does not answer. */
  pool: () => Promise<{
    breaker: { open: boolean; consecutiveFailures: number };
    settings: { targetIdle: number; maxTotal: number };
  } | null>;
}

/** Gauges collected on scrape: instances by status, and the pool's breaker and targets. */
export function registerPoolGauges(registry: Registry, sources: PoolSources): void {
  if (registry.getSingleMetric('convos_instances')) return;
  const registers = [registry];
  new Gauge({
    name: 'convos_instances',
    help: 'Live instances of the pool by status, from the read model (cached 5 s)',
    labelNames: ['status'],
    registers,
    async collect() {
      const counts = await sources.counts().catch(() => null);
      if (!counts) return;
      for (const status of LIVE_STATUSES) this.set({ status }, counts[status] ?? 0);
    },
  });
  const pool = async () => sources.pool().catch(() => null);
  new Gauge({
    name: 'convos_pool_up',
    help: '1 when the pool workflow answered its state query (cached 15 s), 0 when it did not',
    registers,
    async collect() {
      this.set((await pool()) ? 1 : 0);
    },
  });
  const fromPool = (
    name: string,
    help: string,
    value: (s: NonNullable<Awaited<ReturnType<PoolSources['pool']>>>) => number,
  ) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const state = await pool();
        if (state) this.set(value(state));
      },
    });
  fromPool('convos_pool_breaker_open', "1 while the pool's circuit breaker is open (warming stopped)", (s) =>
    s.breaker.open ? 1 : 0,
  );
  fromPool(
    'convos_pool_breaker_consecutive_failures',
    'Start failures in a row the breaker counts (it opens at the threshold)',
    (s) => s.breaker.consecutiveFailures,
  );
  fromPool(
    'convos_pool_target_idle',
    'The idle instances the pool keeps warm (in force)',
    (s) => s.settings.targetIdle,
  );
  fromPool(
    'convos_pool_max_total',
    'The most instances the pool runs (in force)',
    (s) => s.settings.maxTotal,
  );
}
