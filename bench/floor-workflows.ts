/**
 * The engine's floor for the claim benchmark (bench only: bundled for the bench's own floor worker, never by
 * product code). One tiny workflow parks until an Update arrives, in one of two shapes:
 *
 * - `bareUpdate`: no validator, returns its argument at once (the cost of an Update as such);
 * - `shapedUpdate`: shaped like the claim (workflows/instance/claim.ts): a synchronous validator, one local
 *   activity making the same HTTP call to the runtime stand-in as `provision`, one search-attribute upsert,
 *   a small object returned.
 *
 * Like an instance after its claim, the workflow stays parked afterwards (no completion command).
 */
import {
  condition,
  defineUpdate,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { InstanceStatusKey } from '../workflows/search-attributes';

export interface ShapedRequest {
  key: string;
  url: string;
  token: string;
  agentName: string;
  instructions: string;
  /** The durable floor (./floor.ts): the local activity also writes the outcome's row (one statement). */
  record?: boolean;
}

export interface ShapedResult {
  instanceId: string;
  status: string;
  conversationId: string | null;
  joined: boolean;
}

export const bareUpdate = defineUpdate<string, [string]>('floorBare');
export const shapedUpdate = defineUpdate<ShapedResult, [ShapedRequest]>('floorShaped');

export interface FloorActivities {
  floorProvision(input: ShapedRequest): Promise<{ status: string; conversationId: string | null }>;
}

// The same options as the claim's `provision` (workflows/instance/activities.ts).
const { floorProvision } = proxyLocalActivities<FloorActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '200ms', maximumAttempts: 3 },
});

export async function floorWorkflow(instanceId: string): Promise<void> {
  let taken = false;
  setHandler(bareUpdate, (x: string) => {
    taken = true;
    return x;
  });
  setHandler(
    shapedUpdate,
    async (request: ShapedRequest) => {
      taken = true;
      const res = await floorProvision(request);
      upsertSearchAttributes([{ key: InstanceStatusKey, value: 'claimed' }]);
      return { instanceId, status: res.status, conversationId: res.conversationId, joined: false };
    },
    {
      validator: (request: ShapedRequest) => {
        if (taken) throw new Error('taken');
        if (!request?.key || typeof request.instructions !== 'string') throw new Error('bad request');
      },
    },
  );
  await condition(() => taken);
  await condition(() => false);
}
