// The pool API's shapes as the site sees them: aliases into the types generated from the API's own OpenAPI
// document (`api-types.ts`, `npm run api:types` at the repository root), so nothing here is retyped by hand.
import { LIVE_STATUSES } from '../../../contracts/instance-status';
import type { paths } from './api-types';

type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;
/** The 200 body of a route. */
type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: { 200: infer R } }
  ? Json<R>
  : never;
/** The JSON body a route takes. */
type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;

export type TemplateSummary = Ok<'/api/pool/templates', 'get'>[number];
export type Template = Ok<'/api/pool/templates/{slug}', 'get'>;
export type Counts = Ok<'/api/pool/counts', 'get'>;
export type PoolInfo = Ok<'/api/pool/info', 'get'>;
export type AgentGroups = Ok<'/api/pool/agents', 'get'>;
export type Agent = AgentGroups['idle'][number];
export type InstanceDetail = Ok<'/api/pool/instances/{id}', 'get'>;
export type LlmUsage = NonNullable<InstanceDetail['usage']>;
export type Costs = Ok<'/api/pool/costs', 'get'>;
export type ClaimRequest = Body<'/api/pool/claim', 'post'>;
export type ClaimResult = Ok<'/api/pool/claim', 'post'>;

/** The statuses the pool counts and lists (every live one), in lifecycle order: contracts/instance-status.ts. */
export const COUNT_KEYS = LIVE_STATUSES;
export type CountKey = (typeof COUNT_KEYS)[number];

/** The console's order for the groups of GET /api/pool/agents: what needs attention first. */
export const AGENT_GROUPS = [
  'claimed',
  'pending_acceptance',
  'crashed',
  'idle',
  'starting',
  'failed',
  'claiming',
  'destroying',
] as const satisfies readonly CountKey[];
