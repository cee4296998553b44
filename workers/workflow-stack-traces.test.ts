import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { limitWorkflowStackTraces } from './workflow-stack-traces';

it('limits the stack traces of contexts and threads made after it, not the running realm', async () => {
  const before = Error.stackTraceLimit;
  // What new contexts start from now (the process's flag), to give it back at the end.
  const flagBefore = vm.runInContext('Error.stackTraceLimit', vm.createContext({})) as number;
  limitWorkflowStackTraces(3);
  // What the workflow sandbox is: a V8 context made later (here in this thread, as in a workflow thread).
  expect(vm.runInContext('Error.stackTraceLimit', vm.createContext({}))).toBe(3);
  expect(vm.runInContext('new Error().stack.split("\\n").length', vm.createContext({}))).toBeLessThanOrEqual(
    4,
  );
  // A worker thread (the SDK's workflow threads) and the sandboxes it makes.
  const inThread = await new Promise<[number, number]>((resolve, reject) => {
    const w = new Worker(
      `const vm = require('node:vm'); const { parentPort } = require('node:worker_threads');
       parentPort.postMessage([Error.stackTraceLimit, vm.runInContext('Error.stackTraceLimit', vm.createContext({}))]);`,
      { eval: true },
    );
    w.once('message', resolve);
    w.once('error', reject);
  });
  expect(inThread).toEqual([3, 3]);
  // The API's and the activities' errors keep their stacks.
  expect(Error.stackTraceLimit).toBe(before);
  limitWorkflowStackTraces(flagBefore);
});
