/**
 * The statuses of an instance's lifecycle (docs/architecture.md), in lifecycle order: the workflows, the API's
 * schemas and counts, and the site all take them from here. Plain TypeScript with no imports.
 */
export const INSTANCE_STATUSES = [
  'starting',
  'idle',
  'claiming',
  'pending_acceptance',
  'claimed',
  'crashed',
  'failed',
  'destroying',
  'destroyed',
] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

/** Every status but `destroyed`: the instances that are part of the pool (counted, listed). */
export const LIVE_STATUSES = INSTANCE_STATUSES.filter(
  (s): s is Exclude<InstanceStatus, 'destroyed'> => s !== 'destroyed',
);
export type LiveStatus = (typeof LIVE_STATUSES)[number];
