// Idempotency of /pool/provision. The first request is persisted (as "pending") before any work, and
// its result after; a repeat with the same requestId — concurrent, later, or after a restart — gets
// that result and never causes a second conversation. Any other requestId is refused for good.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// The control server's contract (what the pool sends and reads) is written once, in contracts/runtime.ts.
export type { ProvisionRequest, ProvisionResponse as ProvisionResult } from '../../contracts/runtime.ts';

import type { ProvisionRequest, ProvisionResponse as ProvisionResult } from '../../contracts/runtime.ts';

export interface ProvisionRecord {
  request: ProvisionRequest;
  state: 'pending' | 'done';
  result?: ProvisionResult;
  startedAt: string;
  finishedAt?: string;
}

export class ProvisionConflict extends Error {
  constructor(
    readonly code: 'already_provisioned' | 'provision_in_progress',
    message: string,
  ) {
    super(message);
  }
}

export function writeAtomic(file: string, data: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export class ProvisionStore {
  private record: ProvisionRecord | null;
  private inflight: { requestId: string; promise: Promise<ProvisionResult> } | null = null;

  constructor(private readonly file: string) {
    this.record = ProvisionStore.read(file);
  }

  static read(file: string): ProvisionRecord | null {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as ProvisionRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** The claim this instance serves (pending or done), if any. */
  current(): ProvisionRecord | null {
    return this.record;
  }

  /**
   * Runs `work` for the first request only. Same requestId → the same (possibly in-flight) result;
   * a pending record from before a restart is retried with its original request, since the work is
   * idempotent by requestId down to the channel plugin.
   */
  async provision(
    request: ProvisionRequest,
    work: (req: ProvisionRequest) => Promise<ProvisionResult>,
  ): Promise<ProvisionResult> {
    if (this.inflight) {
      if (this.inflight.requestId === request.requestId) return this.inflight.promise;
      throw new ProvisionConflict(
        'provision_in_progress',
        'this instance is being provisioned for another request',
      );
    }
    const existing = this.record;
    if (existing && existing.request.requestId !== request.requestId) {
      throw new ProvisionConflict(
        'already_provisioned',
        'this instance is already provisioned for another request',
      );
    }
    if (existing?.state === 'done' && existing.result) return existing.result;

    // The stored request wins over the repeat's body: a retry must not change what was claimed.
    const effective = existing?.request ?? request;
    const startedAt = existing?.startedAt ?? new Date().toISOString();
    const promise = (async () => {
      if (!existing) {
        this.record = { request: effective, state: 'pending', startedAt };
        writeAtomic(this.file, JSON.stringify(this.record, null, 2));
      }
      const result = await work(effective);
      this.record = {
        request: effective,
        state: 'done',
        result,
        startedAt,
        finishedAt: new Date().toISOString(),
      };
      writeAtomic(this.file, JSON.stringify(this.record, null, 2));
      return result;
    })();
    this.inflight = { requestId: request.requestId, promise };
    try {
      return await promise;
    } finally {
      this.inflight = null;
    }
  }
}
