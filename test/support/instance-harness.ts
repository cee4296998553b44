/**
 * The instance workflow alone, against the run's dev server, with mocked activities scripted per instance (so
 * tests may run concurrently): no database, no runtime, no provider. Every instance is started in strict mode
 * (an illegal transition fails it) and every read-model write is kept, so a test can wait for a transition and
 * a suite can check what the code did against the table.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { ComputeHandle } from '../../activities/compute/types';
import { HealthTracker } from '../../activities/health-sweeper';
import { completeClaimedRecord, type TransitionRecord } from '../../activities/read-model';
import type { HealthReport } from '../../activities/runtime-client';
import type { instanceWorkflow } from '../../workflows/instance';
import { STRICT_TRANSITIONS_MEMO } from '../../workflows/instance/transitions';
import { getStateQuery, healthChangedSignal } from '../../workflows/messages';
import type {
  ClaimBinding,
  ClaimRequest,
  InstanceInput,
  InstanceState,
  InstanceStatus,
  InstanceTimings,
  ResourcePlanItem,
} from '../../workflows/types';
import { startMockWorker } from './mock-worker';

export const fastTimings: InstanceTimings = {
  startDeadlineMs: 10_000,
  healthIntervalMs: 300,
  healthFailuresAllowed: 2,
  idleTtlMs: 0,
  claimedTtlMs: 0,
  maxRestarts: 1,
  stepMaxAttempts: 2,
  maxHistoryEvents: 10_000,
};

/** What one instance's activities do; a test may change any of it while the instance runs. */
export interface Script {
  plan: ResourcePlanItem[];
  createResource: (kind: string) => Promise<{ kind: string; provider: string; ref: string }>;
  createCompute: () => Promise<ComputeHandle>;
  restartCompute: () => Promise<ComputeHandle>;
  destroyCompute: () => Promise<void>;
  releaseResource: (kind: string) => Promise<void>;
  health: () => HealthReport | Promise<HealthReport>;
  provision: (request: ClaimRequest) => Promise<ClaimBinding>;
  /** Whether provisioning records the drafted `claimed` itself, as the product's activity does when it can. */
  provisionRecordsClaimed: boolean;
}

export const ready: HealthReport = { reachable: true, ready: true };
export const notReady: HealthReport = { reachable: true, ready: false, error: 'booting' };
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function provisioned(instanceId: string, request: ClaimRequest): ClaimBinding {
  return {
    instanceId,
    agentName: request.agentName,
    conversationId: `conversation-${request.claimKey}`,
    joined: false,
    status: 'created',
    hasInviteUrl: true,
    hasChatUrl: false,
  };
}

function defaultScript(instanceId: string): Script {
  return {
    plan: [],
    createResource: async (kind) => ({ kind, provider: 'mock', ref: `${kind}-${instanceId}` }),
    createCompute: async () => ({ ref: instanceId, url: 'http://mock.invalid' }),
    restartCompute: async () => ({ ref: instanceId, url: 'http://mock-restarted.invalid' }),
    destroyCompute: async () => {},
    releaseResource: async () => {},
    health: () => ready,
    provision: async (request) => provisioned(instanceId, request),
    provisionRecordsClaimed: true,
  };
}

export interface TestInstance {
  instanceId: string;
  handle: WorkflowHandle<typeof instanceWorkflow>;
  script: Script;
  /** Activity calls in order: `createCompute`, `releaseResource:wallet`, … */
  calls: string[];
}

/** One transition as recorded (the deferred `claiming` comes out of `earlier`, in order). */
export interface SeenTransition {
  instanceId: string;
  seq: number;
  from: InstanceStatus | null;
  to: InstanceStatus;
  reason: string;
  /** The row's fields as written (not for the deferred `claiming`, which only has an audit event). */
  fields?: TransitionRecord['fields'];
}

export interface StartOptions {
  timings?: Partial<InstanceTimings>;
  script?: Partial<Script>;
  /** Shorter than the default 10 s: a workflow task held by a local activity heartbeats sooner. */
  workflowTaskTimeout?: Duration;
}

export interface Harness {
  client: Client;
  /** Every transition every instance of this harness recorded. */
  seen: SeenTransition[];
  start(options?: StartOptions): Promise<TestInstance>;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export async function startHarness(name: string): Promise<Harness> {
  // The mocked failures would each log a warning: only errors are worth reading here.
  if (!runtimeInstalled) Runtime.install({ logger: new DefaultLogger('ERROR') });
  runtimeInstalled = true;
  const scripts = new Map<string, Script>();
  const calls = new Map<string, string[]>();
  const seen: SeenTransition[] = [];
  const scriptOf = (instanceId: string) => {
    const script = scripts.get(instanceId);
    if (!script) throw new Error(`no script for ${instanceId}`);
    return script;
  };
  const call = (instanceId: string, what: string) => calls.get(instanceId)?.push(what);

  const activities: Partial<Activities> = {
    recordTransition: async (record: TransitionRecord) => {
      for (const e of record.earlier ?? []) {
        seen.push({ instanceId: record.instanceId, seq: e.seq, from: e.from, to: e.to, reason: e.reason });
      }
      seen.push({
        instanceId: record.instanceId,
        seq: record.seq,
        from: record.from,
        to: record.to,
        reason: record.reason,
        fields: record.fields,
      });
    },
    planResources: async ({ instanceId }) => scriptOf(instanceId).plan,
    createResource: async (input) => {
      call(input.instanceId, `createResource:${input.kind}`);
      return scriptOf(input.instanceId).createResource(input.kind);
    },
    createCompute: async (input) => {
      call(input.instanceId, 'createCompute');
      return scriptOf(input.instanceId).createCompute();
    },
    restartCompute: async (input) => {
      call(input.instanceId, 'restartCompute');
      return scriptOf(input.instanceId).restartCompute();
    },
    destroyCompute: async (input) => {
      call(input.instanceId, 'destroyCompute');
      return scriptOf(input.instanceId).destroyCompute();
    },
    releaseResource: async (input) => {
      call(input.instanceId, `releaseResource:${input.kind}`);
      return scriptOf(input.instanceId).releaseResource(input.kind);
    },
    checkHealth: async (input) => scriptOf(input.instanceId).health(),
    provision: async (input) => {
      call(input.instanceId, 'provision');
      const script = scriptOf(input.instanceId);
      const binding = await script.provision(input.request);
      // As the product's activity: the drafted `claimed` is recorded here, unless the join waits for acceptance
      // (or the script says the write failed: the workflow then makes it itself).
      const record = input.claimedRecord;
      if (!record || binding.status === 'waiting_for_acceptance' || !script.provisionRecordsClaimed) {
        return binding;
      }
      const at = new Date().toISOString();
      await activities.recordTransition!(completeClaimedRecord(record, binding, at));
      return { ...binding, recordedAt: at };
    },
  };

  // The health sweeper, as the product runs it (its HealthTracker) on the recorded transitions (the read
  // model here) and the scripts' health: a check every healthIntervalMs of each idle or claimed instance.
  let stopped = false;
  const sweepers: Promise<void>[] = [];
  const sweep = async (instanceId: string, handle: WorkflowHandle, timings: InstanceTimings) => {
    const tracker = new HealthTracker(timings.healthFailuresAllowed);
    while (!stopped) {
      await sleep(timings.healthIntervalMs);
      const row = seen.findLast((t) => t.instanceId === instanceId);
      if (row?.to === 'destroyed') return;
      if (row?.to !== 'idle' && row?.to !== 'claimed') continue;
      const report = await Promise.resolve(scriptOf(instanceId).health()).catch(
        (err) => ({ reachable: false, ready: false, error: String(err) }) as HealthReport,
      );
      const change = tracker.observe({ id: instanceId, seq: row.seq }, report);
      if (change) await handle.signal(healthChangedSignal, change).catch(() => {});
    }
  };

  const { client, taskQueue, stop: stopWorker } = await startMockWorker(name, activities);

  return {
    client,
    seen,
    async start(options = {}) {
      const instanceId = randomUUID();
      const script = { ...defaultScript(instanceId), ...options.script };
      scripts.set(instanceId, script);
      calls.set(instanceId, []);
      const input: InstanceInput = {
        instanceId,
        poolName: name,
        computeProvider: 'mock',
        timings: { ...fastTimings, ...options.timings },
      };
      const handle = await client.workflow.start<typeof instanceWorkflow>('instanceWorkflow', {
        taskQueue,
        workflowId: `instance-${instanceId}`,
        args: [input],
        memo: { [STRICT_TRANSITIONS_MEMO]: true },
        ...(options.workflowTaskTimeout ? { workflowTaskTimeout: options.workflowTaskTimeout } : {}),
      });
      sweepers.push(sweep(instanceId, handle, input.timings));
      return { instanceId, handle, script, calls: calls.get(instanceId)! };
    },
    async stop() {
      stopped = true;
      await Promise.all(sweepers);
      await stopWorker();
    },
  };
}

/** Waits until the instance's state satisfies `done` (polling getState). */
export async function waitForState(
  handle: WorkflowHandle,
  done: (state: InstanceState) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<InstanceState> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = await handle.query(getStateQuery);
    if (done(state)) return state;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; state: ${JSON.stringify(state)}`);
    await sleep(100);
  }
}

export const waitForStatus = (handle: WorkflowHandle, status: InstanceStatus, timeoutMs?: number) =>
  waitForState(handle, (s) => s.status === status, `status ${status}`, timeoutMs);

export const claimRequest = (name = 'Unit', extra: Partial<ClaimRequest> = {}): ClaimRequest => ({
  claimKey: `unit-${randomUUID()}`,
  agentName: name,
  instructions: 'Be brief.',
  templateSlug: null,
  hasJoinUrl: false,
  ...extra,
});
