/**
 * A compute provider whose "machines" are entries in one shared runtime stand-in (`server.ts` in shared
 * mode), so tests and benchmarks can run hundreds of instances cheaply. It honours the same interface and
 * idempotency rules as the real providers, with injectable provider faults.
 */
import {
  type ComputeHandle,
  type ComputeProvider,
  ComputeRejectedError,
  type ComputeSpec,
} from '../../activities/compute/types';
import type { StandinFaults } from './server';

export class StandinComputeProvider implements ComputeProvider {
  readonly name: string;
  /** Injected faults of the provider itself (not the runtime): fail this many create calls. */
  createFailures = 0;
  /** Refuse this many create calls for good (a provider's validation error: not retried). */
  createRejections = 0;
  createCalls = 0;
  /** Fail this many destroy calls (a provider outage during teardown). */
  destroyFailures = 0;
  /** A slow provider: every create takes this long (it cannot be interrupted, like a real API call). */
  createDelayMs = 0;
  /** Creates that have returned (a test waits for a slow one to land before judging what is left). */
  createsFinished = 0;
  destroyCalls = 0;
  /**
   * A flaky provider: this share of create and destroy calls fails, half of them before reaching the provider
   * and half after it acted (a lost response: the retry must adopt what the first call made).
   */
  failureRate: number;
  /** The runtime version it reports (a test changes it to roll the pool); null: unknown. */
  version: string | null = null;

  constructor(
    readonly baseUrl: string,
    opts: { name?: string; faults?: () => StandinFaults | undefined; failureRate?: number } = {},
  ) {
    this.name = opts.name ?? 'standin';
    this.faults = opts.faults ?? (() => undefined);
    this.failureRate = opts.failureRate ?? 0;
  }

  async runtimeVersion(): Promise<string | null> {
    return this.version;
  }

  private handleOf(instanceId: string): ComputeHandle {
    return {
      ref: instanceId,
      url: `${this.baseUrl}/i/${instanceId}`,
      ...(this.version ? { runtimeVersion: this.version } : {}),
    };
  }

  /** Runs `act` under the failure rate: null, or where the injected failure strikes. */
  private async flaky<T>(what: string, act: () => Promise<T>): Promise<T> {
    const roll = Math.random();
    if (roll < this.failureRate / 2) throw new Error(`injected ${what} failure (before the provider acted)`);
    const result = await act();
    if (roll < this.failureRate) throw new Error(`injected ${what} failure (response lost)`);
    return result;
  }
  private readonly faults: () => StandinFaults | undefined;

  private async call(method: string, path: string, body?: unknown) {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`stand-in ${method} ${path} answered ${res.status}`);
    return res.json() as Promise<unknown>;
  }

  async create(spec: ComputeSpec): Promise<ComputeHandle> {
    this.createCalls += 1;
    if (this.createDelayMs > 0) await new Promise((r) => setTimeout(r, this.createDelayMs));
    if (this.createRejections > 0) {
      this.createRejections -= 1;
      throw new ComputeRejectedError('injected rejection');
    }
    if (this.createFailures > 0) {
      this.createFailures -= 1;
      throw new Error('injected compute failure');
    }
    await this.flaky('compute', () =>
      this.call('POST', '/_standin/instances', {
        instanceId: spec.instanceId,
        token: spec.env.INSTANCE_TOKEN,
        ...(spec.env.POOL_API_URL ? { poolApiUrl: spec.env.POOL_API_URL } : {}),
        faults: this.faults(),
      }),
    );
    this.createsFinished += 1;
    return this.handleOf(spec.instanceId);
  }

  async restart(spec: ComputeSpec): Promise<ComputeHandle> {
    await this.call('PUT', `/_standin/instances/${spec.instanceId}/faults`, {});
    return this.handleOf(spec.instanceId);
  }

  async destroy(instanceId: string): Promise<void> {
    this.destroyCalls += 1;
    if (this.destroyFailures > 0) {
      this.destroyFailures -= 1;
      throw new Error('injected destroy failure');
    }
    await this.flaky('destroy', () => this.call('DELETE', `/_standin/instances/${instanceId}`));
  }

  async list(): Promise<string[]> {
    const rows = (await this.call('GET', '/_standin/instances')) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  async setFaults(instanceId: string, faults: StandinFaults) {
    await this.call('PUT', `/_standin/instances/${instanceId}/faults`, faults);
  }

  /** The conversation's creator let the agent in: the stand-in reports it to the pool, as the runtime does. */
  async acceptJoin(
    instanceId: string,
    poolApiUrl?: string,
  ): Promise<{ conversationId: string; poolStatus: number }> {
    const body = poolApiUrl ? { poolApiUrl } : {};
    return (await this.call('POST', `/_standin/instances/${instanceId}/accept`, body)) as {
      conversationId: string;
      poolStatus: number;
    };
  }

  /** A message went through the instance's conversation now (what the runtime's health reports). */
  async recordActivity(instanceId: string) {
    await this.call('POST', `/_standin/instances/${instanceId}/activity`, {});
  }

  async inventory(): Promise<
    Array<{ id: string; provisioned: { requestId: string } | null; provisionCalls: number }>
  > {
    return (await this.call('GET', '/_standin/instances')) as Array<{
      id: string;
      provisioned: { requestId: string } | null;
      provisionCalls: number;
    }>;
  }
}
