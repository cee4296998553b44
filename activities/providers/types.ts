/**
 * Per-instance resources at third-party providers (LLM key, inbox, phone number, wallet): one small adapter
 * interface, the same for every provider (docs/providers.md). Every call is idempotent by names and keys we
 * choose, so an activity retry after a lost response adopts what exists instead of creating a second one.
 */

/** What an instance can hold besides its compute, in the order a start creates them. */
export const RESOURCE_KINDS = ['wallet', 'llmKey', 'inbox', 'phone'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export interface ResourceContext {
  instanceId: string;
  poolName: string;
  /**
   * The resource's deterministic name at the provider: `convos-<pool>-<instanceId>`. The sweeper finds
   * everything of a pool by its prefix `convos-<pool>-`.
   */
  name: string;
  /** `<workflowId>:<step>`: stable across activity retries, workflow reset and continue-as-new. */
  idempotencyKey: string;
}

export interface CreatedResource {
  /** The provider's id for it (not secret): what destroy and the read model use. */
  ref: string;
  /** Non-secret facts shown to operators (an inbox address, a phone number, a key's label). */
  metadata: Record<string, string>;
  /** Non-secret environment the runtime gets for it (e.g. `AGENTMAIL_INBOX_ID`). */
  env: Record<string, string>;
  /**
   * The one secret this resource carries (an API key, a private key), with the runtime variable that
   * receives it. Stored encrypted by the activity; never returned into a workflow.
   */
  secret?: { env: string; value: string };
}

/** A resource a provider holds for a pool, as the sweeper sees it. */
export interface HeldResource {
  ref: string;
  name: string;
  /** Parsed from the name; null when the name does not follow our scheme (then it is not ours). */
  instanceId: string | null;
}

export interface ResourceProvider {
  readonly kind: ResourceKind;
  /** Provider name as recorded on the instance (`openrouter`, `agentmail`, `telnyx`, `wallet`). */
  readonly name: string;
  /** Creates the resource, or adopts the one that already carries `ctx.name`. */
  create(ctx: ResourceContext): Promise<CreatedResource>;
  /**
   * Releases it: by `ref` when known, else found by `ctx.name`. Something already gone is success.
   */
  destroy(ctx: ResourceContext, ref: string | null): Promise<void>;
  /** Everything this provider holds for the pool (by name prefix or tag), for the orphan sweeper. */
  list(poolName: string): Promise<HeldResource[]>;
}

/** Why a configured-out provider is skipped, recorded on each instance that would have used it. */
export interface DisabledProvider {
  kind: ResourceKind;
  name: string;
  reason: string;
}

export const resourceNamePrefix = (poolName: string) => `convos-${poolName}-`;
export const resourceName = (poolName: string, instanceId: string) =>
  `${resourceNamePrefix(poolName)}${instanceId}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The instance id in one of our names, or null when the name is not one of this pool's. Instance ids are
 * UUIDs, which keeps pool `a` from claiming pool `a-b`'s resources (`convos-a-b-<id>` starts with `convos-a-`).
 */
export function instanceIdFromName(poolName: string, name: string): string | null {
  const prefix = resourceNamePrefix(poolName);
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return UUID.test(rest) ? rest : null;
}
