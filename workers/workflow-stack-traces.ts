/**
 * How many frames a stack trace keeps inside the worker's workflow threads.
 *
 * The Temporal SDK (1.24) records where every promise a workflow creates was created, for the `__stack_trace`
 * query the Web UI shows: a promise hook builds an `Error` stack, source-mapped frame by frame, for each one
 * (temporalio/sdk-typescript#1587). Profiled on a claim burst, that was ≈ 40 % of the workflow thread's CPU, and
 * its cost grows with the frames kept (V8's stack trace limit, 10 by default). The workflow sandbox freezes
 * `Error` before a workflow's code runs, so the limit can only be set as the V8 flag its contexts start from.
 *
 * `limitWorkflowStackTraces` sets that flag before the worker starts its workflow threads: every V8 context
 * made after it (the workflow threads and their sandboxes) keeps `frames` frames. The process's own main realm
 * already exists and keeps its limit: the API's and the activities' errors keep their full stacks.
 * The price: a workflow failure's stack and the stack trace query show the innermost `frames` frames.
 */
import v8 from 'node:v8';

/** The default of WORKER_WORKFLOW_STACK_FRAMES: the throw site and its nearest callers. */
export const WORKFLOW_STACK_FRAMES = 5;

export function limitWorkflowStackTraces(frames: number): void {
  v8.setFlagsFromString(`--stack-trace-limit=${frames}`);
}
