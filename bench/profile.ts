/**
 * Where does a claim's time go? Each claimed instance's workflow history carries server timestamps for the
 * steps of the claim Update; the client knows when the HTTP request started and ended. Server and client
 * share one clock (same machine), so the gaps between them split a claim into phases.
 */
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { percentile } from './lib';

export interface ClaimSample {
  key: string;
  instanceId: string | null;
  startedAt: number;
  endedAt: number;
}

export const PHASES = {
  beforeTask:
    'API before the workflow runs: claims row and reservation (one statement), Update RPC, task dispatch',
  task: 'the claim workflow task: validator, handler, provision (local activity: HTTP call to the runtime, then the claimed row and the links in one statement), Update completed',
  afterUpdate:
    'API after the Update: result delivered, claims row finished (with the recipients) while the links are read, response',
} as const;
export type Phase = keyof typeof PHASES;

export interface ClaimProfile {
  sampled: number;
  /** Median ms per phase. */
  p50: Record<Phase, number>;
  /**
   * What the claim added to the history (median): workflow tasks, local activities (their markers), other
   * markers (a `patched()` first asked mid-run) and search-attribute upserts (each a visibility write; a patch
   * marker comes with one).
   */
  workflowTasks: number;
  localActivities: number;
  otherMarkers: number;
  searchAttributeUpserts: number;
}

function eventTime(e: { eventTime?: Parameters<typeof tsToMs>[0] }): number {
  return tsToMs(e.eventTime);
}

export async function profileClaims(
  temporal: Client,
  samples: ClaimSample[],
  max = 40,
): Promise<ClaimProfile> {
  const picked = samples.filter((s) => s.instanceId).slice(-max);
  const phases: Record<Phase, number[]> = { beforeTask: [], task: [], afterUpdate: [] };
  const tasks: number[] = [];
  const markers: number[] = [];
  const otherMarkers: number[] = [];
  const upserts: number[] = [];
  for (const s of picked) {
    const history = await temporal.workflow.getHandle(`instance-${s.instanceId}`).fetchHistory();
    const events = history.events ?? [];
    const accepted = events.findIndex(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId === s.key,
    );
    const completed = events.findIndex(
      (e) => e.workflowExecutionUpdateCompletedEventAttributes?.meta?.updateId === s.key,
    );
    if (accepted < 0 || completed < 0) continue;
    // The task that accepted the Update: the last WorkflowTaskStarted before the acceptance. Provisioning
    // and the read-model write are local activities inside it, so its end is the Update's completion.
    let started = accepted;
    while (started > 0 && !events[started]!.workflowTaskStartedEventAttributes) started--;
    const window = events.slice(started, completed + 1);
    phases.beforeTask.push(eventTime(events[started]!) - s.startedAt);
    phases.task.push(eventTime(events[completed]!) - eventTime(events[started]!));
    phases.afterUpdate.push(s.endedAt - eventTime(events[completed]!));
    tasks.push(window.filter((e) => e.workflowTaskCompletedEventAttributes).length);
    const marker = (e: (typeof window)[number]) => e.markerRecordedEventAttributes?.markerName;
    markers.push(window.filter((e) => marker(e) === 'core_local_activity').length);
    otherMarkers.push(window.filter((e) => marker(e) && marker(e) !== 'core_local_activity').length);
    upserts.push(window.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length);
  }
  const med = (xs: number[]) => Math.round(percentile(xs, 50) * 10) / 10;
  return {
    sampled: tasks.length,
    p50: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, med(v)])) as Record<Phase, number>,
    workflowTasks: med(tasks),
    localActivities: med(markers),
    otherMarkers: med(otherMarkers),
    searchAttributeUpserts: med(upserts),
  };
}
