/**
 * The compute-provider interface: where an instance's runtime runs. Every method is idempotent and keyed
 * by the instance id (the deterministic name), so a retry after a lost response adopts what exists.
 */

import { FailureType } from '../../contracts/failures';

export interface ComputeSpec {
  instanceId: string;
  /** The pool it belongs to: providers that name things remotely use `convos-<pool>-<instanceId>`. */
  poolName: string;
  /** Environment for the runtime: its own id and token, the pool's callback URL, model and XMTP settings. */
  env: Record<string, string>;
}

export interface ComputeHandle {
  /** Provider reference (recorded on the instance; not secret). */
  ref: string;
  /** Base URL of the instance's control server (`/pool/health`, `/pool/provision`). */
  url: string;
  /** The runtime version this compute runs, when the provider can tell (see `runtimeVersion`). */
  runtimeVersion?: string;
}

export interface ComputeProvider {
  readonly name: string;
  /** Creates the instance's compute, or returns the existing one for this instance id. */
  create(spec: ComputeSpec): Promise<ComputeHandle>;
  /** Restarts the runtime from its persisted state; the URL may change. */
  restart(spec: ComputeSpec): Promise<ComputeHandle>;
  /** Stops and deletes everything the instance holds; an unknown instance is already destroyed. */
  destroy(instanceId: string, poolName: string): Promise<void>;
  /** Instance ids this provider holds for the pool (for the orphan sweeper). */
  list(poolName: string): Promise<string[]>;
  /**
   * Whether the instance's runtime is still running, when the provider can tell cheaply (null: cannot
   * tell). A runtime known to be gone fails its health check at once instead of after N misses.
   */
  isRunning?(instanceId: string, poolName: string): Promise<boolean | null>;
  /**
   * The runtime version an instance created now gets (an image id, a pinned image reference, a hash of the
   * runtime's sources), or null when the provider cannot tell. Declared with the pool's settings at every worker
   * start: idle instances on another version are replaced (docs/architecture.md, "Rolling runtime upgrades").
   */
  runtimeVersion?(): Promise<string | null>;
}

/** A provider refused the request for a reason retrying cannot fix (bad config, validation, auth). */
export class ComputeRejectedError extends Error {
  override name = FailureType.ComputeRejectedError;
}
