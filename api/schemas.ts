/** JSON schemas shared by several routes (TypeBox: one definition gives validation, types and OpenAPI). */
import { type TSchema, Type } from '@sinclair/typebox';
import {
  INSTANCE_STATUSES,
  LIVE_STATUSES,
  type InstanceStatus as Status,
} from '../contracts/instance-status';

export const ErrorBody = Type.Object(
  { error: Type.String(), code: Type.String() },
  { $id: 'Error', description: 'Every error: a clear message and a machine code' },
);

export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, Type.Ref('Error')])) as Record<number, TSchema>;

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const InstanceStatus = Type.Unsafe<Status>({ type: 'string', enum: [...INSTANCE_STATUSES] });

export const Counts = Type.Object(Object.fromEntries(LIVE_STATUSES.map((s) => [s, Type.Integer()])));

export const AgentSummary = Type.Object({
  id: Type.String(),
  status: InstanceStatus,
  agentName: Nullable(Type.String()),
  templateSlug: Nullable(Type.String()),
  conversationId: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  claimedAt: Nullable(Type.String({ format: 'date-time' })),
  lastError: Nullable(Type.String()),
  runtimeVersion: Nullable(
    Type.String({
      description: 'the runtime version its compute runs (image id, source hash); null: unknown',
    }),
  ),
});

export const InstanceIdParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$' }),
});

export const CountBody = Type.Object(
  { count: Type.Integer({ minimum: 1, maximum: 20 }) },
  { additionalProperties: false },
);

export const Ok = Type.Object({ ok: Type.Boolean() });

/**
 * In a route's schema: its body may be left out (the handler defaults it). The OpenAPI document then says
 * `requestBody.required: false` (@fastify/swagger would say true for every body), so clients and the fuzz
 * suite read the contract the route keeps.
 */
export const BODY_OPTIONAL = { 'x-body-optional': true } as const;

/** The OpenAPI document's bodies of routes marked `BODY_OPTIONAL`, as not required. */
export function markOptionalBodies<T>(openapi: T): T {
  const paths = (openapi as { paths?: Record<string, Record<string, Record<string, unknown>>> }).paths ?? {};
  for (const operations of Object.values(paths))
    for (const op of Object.values(operations)) {
      if (op?.['x-body-optional'] !== true) continue;
      delete op['x-body-optional'];
      const body = op.requestBody as { required?: boolean } | undefined;
      if (body) body.required = false;
    }
  return openapi;
}

const Int = Type.Integer();
/** The pool's settings (`PoolSettings`, workflows/types.ts). */
export const PoolSettingsSchema = Type.Object({
  poolName: Type.String(),
  targetIdle: Int,
  maxTotal: Int,
  computeProvider: Type.String(),
  instanceTimings: Type.Object({
    startDeadlineMs: Int,
    healthIntervalMs: Int,
    healthFailuresAllowed: Int,
    idleTtlMs: Int,
    claimedTtlMs: Int,
    maxRestarts: Int,
    stepMaxAttempts: Int,
    maxHistoryEvents: Int,
  }),
  breakerThreshold: Int,
  breakerCooldownMs: Int,
  pollIntervalMs: Int,
  reconcileIntervalMs: Type.Optional(Int),
  runtimeVersion: Type.Optional(
    Nullable(Type.String({ description: 'the runtime version new instances get; null: unknown' })),
  ),
  upgradeBatch: Type.Optional(Int),
});

/** What is in force, what the environment declared, and where they differ (`PoolSettingsReport`). */
export const PoolConfig = Type.Object(
  {
    settings: PoolSettingsSchema,
    declared: PoolSettingsSchema,
    overridden: Type.Array(Type.String(), {
      description: 'settings an operator changed at run time that differ from the declaration',
    }),
    retiring: Type.Integer({
      description:
        'idle or starting instances on a compute provider or runtime version no longer in force, being replaced',
    }),
  },
  { description: 'the settings in force; null while the pool workflow does not exist' },
);

/** One skill of a template and whether it can be delivered here (contracts/template-skills.ts). */
export const SkillAvailabilityList = Type.Array(
  Type.Object({
    skill: Type.String(),
    available: Type.Boolean(),
    reason: Nullable(Type.String({ description: 'why not, when not available' })),
  }),
  {
    description:
      "each of the template's skills: available in this deployment (the template info) or on this agent (the claim answer), and why not",
  },
);

/** Something read from a provider for the console: the facts, or why they are missing right now. */
export const Unavailable = Type.Object({
  available: Type.Literal(false),
  reason: Type.String({ description: 'why the provider could not be read (no body, no secret)' }),
});

export const LlmKeyUsage = Type.Union(
  [
    Type.Object({
      available: Type.Literal(true),
      usageUsd: Type.Number({ description: 'spent since the last reset' }),
      limitUsd: Nullable(Type.Number({ description: 'the cap; null: none' })),
      remainingUsd: Nullable(Type.Number()),
      limitReset: Nullable(Type.String({ description: 'daily, weekly, monthly; null: never resets' })),
      disabled: Type.Boolean(),
      fetchedAt: Type.String({ format: 'date-time', description: 'when it was read (kept ~60 s)' }),
    }),
    Unavailable,
  ],
  { description: "the instance's own LLM key against its cap" },
);
