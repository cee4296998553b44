/** Reading the failures activities and child calls throw into the workflow. */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** Short message of a failure, without stack or wrapper noise. */
export function reasonOf(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** The `type` of the application failure behind an activity failure (contracts/failures.ts). */
export function failureType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}
