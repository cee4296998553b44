/** The workflows the worker registers (this file is the bundle's entry point). */

export { healthSweeperWorkflow } from './health-sweeper';
export { inboundDeliveryWorkflow } from './inbound';
export { instanceWorkflow } from './instance';
export { poolWorkflow } from './pool';
export { reconcileWorkflow } from './reconcile';
