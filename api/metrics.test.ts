/** The API's series: how claim errors are classified, per-registry isolation, and the cached pool gauges. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ApiError } from './errors';
import {
  apiMetrics,
  cached,
  claimOutcomeOf,
  countClaimRejection,
  recordWebhookDelivery,
  registerPoolGauges,
} from './metrics';

const value = async (registry: Registry, name: string, labels: Record<string, string> = {}) => {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values as Array<{ labels: Record<string, string>; value: number }> | undefined)
    ?.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
};

describe('classification', () => {
  it('names the outcome of every error the claim service throws', () => {
    expect(claimOutcomeOf(new ApiError(400, 'CLAIM_REFUSED', 'x'))).toBe('refused');
    expect(claimOutcomeOf(new ApiError(409, 'IDEMPOTENCY_KEY_REUSED', 'x'))).toBe('conflict');
    expect(claimOutcomeOf(new ApiError(409, 'CLAIM_IN_PROGRESS', 'x'))).toBe('conflict');
    expect(claimOutcomeOf(new ApiError(502, 'PROVISION_FAILED', 'x'))).toBe('provision_failed');
    expect(claimOutcomeOf(new ApiError(503, 'NO_IDLE_INSTANCE', 'x'))).toBe('no_idle');
    expect(claimOutcomeOf(new ApiError(503, 'CLAIM_PENDING', 'x'))).toBe('pending');
    expect(claimOutcomeOf(new ApiError(503, 'ANONYMOUS_BUDGET_EXHAUSTED', 'x'))).toBe('rate_limited');
    expect(claimOutcomeOf(new ApiError(503, 'TEMPORAL_UNAVAILABLE', 'x'))).toBe('error');
    expect(claimOutcomeOf(new Error('boom'))).toBe('error');
  });

  it('counts refusals by reason and limits, and neither 5xx nor a claim in progress', async () => {
    const registry = new Registry();
    const m = apiMetrics(registry);
    countClaimRejection(m, new ApiError(429, 'RATE_LIMITED', 'x'));
    countClaimRejection(m, new ApiError(503, 'ANONYMOUS_BUDGET_EXHAUSTED', 'x'));
    countClaimRejection(m, new ApiError(401, 'UNAUTHORIZED', 'x'));
    countClaimRejection(
      m,
      Object.assign(new Error('body/x'), { statusCode: 400, code: 'FST_ERR_VALIDATION' }),
    );
    countClaimRejection(m, new ApiError(400, 'BAD_INVITE', 'x'));
    countClaimRejection(m, new ApiError(400, 'CLAIM_REFUSED', 'x'));
    countClaimRejection(m, new ApiError(409, 'IDEMPOTENCY_KEY_REUSED', 'x'));
    countClaimRejection(m, new ApiError(409, 'CLAIM_IN_PROGRESS', 'x'));
    countClaimRejection(m, new ApiError(502, 'PROVISION_FAILED', 'x'));
    countClaimRejection(m, new Error('boom'));
    expect(await value(registry, 'convos_claims_rate_limited_total', { limit: 'client' })).toBe(1);
    expect(await value(registry, 'convos_claims_rate_limited_total', { limit: 'anonymous' })).toBe(1);
    for (const reason of ['unauthorized', 'invalid_request', 'join_url', 'runtime', 'idempotency_key_reused'])
      expect(await value(registry, 'convos_claims_refused_total', { reason }), reason).toBe(1);
    expect(await value(registry, 'convos_claims_refused_total')).toBe(5);
  });
});

it('keeps registries apart, and registers once per registry', async () => {
  const a = new Registry();
  const b = new Registry();
  expect(apiMetrics(a)).toBe(apiMetrics(a));
  recordWebhookDelivery(a, 'agentmail', 'accepted');
  expect(await value(a, 'convos_webhook_deliveries_total', { provider: 'agentmail' })).toBe(1);
  expect(await value(b, 'convos_webhook_deliveries_total')).toBeUndefined();
});

it('reads the pool gauges on scrape, through the cache', async () => {
  const registry = new Registry();
  let reads = 0;
  registerPoolGauges(registry, {
    counts: cached(60_000, async () => {
      reads += 1;
      return {
        starting: 1,
        idle: 2,
        claiming: 0,
        pending_acceptance: 0,
        claimed: 3,
        crashed: 0,
        failed: 1,
        destroying: 0,
      };
    }),
    pool: async () => ({
      breaker: { open: true, consecutiveFailures: 5 },
      settings: { targetIdle: 2, maxTotal: 9 },
    }),
  });
  expect(await value(registry, 'convos_instances', { status: 'claimed' })).toBe(3);
  expect(await value(registry, 'convos_instances', { status: 'failed' })).toBe(1);
  expect(await value(registry, 'convos_pool_breaker_open')).toBe(1);
  expect(await value(registry, 'convos_pool_breaker_consecutive_failures')).toBe(5);
  expect(await value(registry, 'convos_pool_max_total')).toBe(9);
  expect(await value(registry, 'convos_pool_up')).toBe(1);
  await registry.metrics();
  expect(reads).toBe(1);
});

it('does not keep a failed read in the cache', async () => {
  let n = 0;
  const read = cached(60_000, async () => {
    n += 1;
    if (n === 1) throw new Error('down');
    return n;
  });
  await expect(read()).rejects.toThrow('down');
  await new Promise((r) => setTimeout(r, 0));
  expect(await read()).toBe(2);
  expect(await read()).toBe(2);
});
