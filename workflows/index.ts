/** The workflows the worker registers (this file is the bundle's entry point). */
export { instanceWorkflow } from './instance';
export { poolWorkflow } from './pool';
export { reconcileWorkflow } from './reconcile';
