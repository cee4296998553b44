/**
 * Activities for an instance's per-provider resources (wallet, LLM key, inbox, phone number). They keep
 * Temporal payloads free of secrets: a secret a provider hands out goes straight into the encrypted secret
 * store, and the workflow only ever sees kinds, provider names and provider refs.
 */
import { and, eq } from 'drizzle-orm';
import type { ResourceMetadata } from '../contracts/resources';
import type { Db } from '../drizzle/client';
import { instanceResources } from '../drizzle/schema';
import type { ResourcePlanItem, ResourceRef } from '../workflows/types';
import type { ActivityMetrics } from './metrics';
import { providerCall } from './providers/failures';
import {
  type DisabledProvider,
  RESOURCE_KINDS,
  type ResourceContext,
  type ResourceKind,
  type ResourceProvider,
  resourceName,
} from './providers/types';
import type { SecretStore } from './secret-store';

export interface ResourceProviders {
  /** The enabled adapter for each kind. */
  enabled: Partial<Record<ResourceKind, ResourceProvider>>;
  /** Kinds that are configured out, and why (recorded on every instance). */
  disabled: DisabledProvider[];
}

export interface ResourceDeps {
  db: Db;
  secrets: SecretStore;
  resources: ResourceProviders;
  /** The worker's series (none: nothing is counted). */
  metrics?: ActivityMetrics;
}

const secretName = (kind: string) => `resource:${kind}`;

export function resourceContext(
  instanceId: string,
  poolName: string,
  workflowId: string,
  step: string,
): ResourceContext {
  return {
    instanceId,
    poolName,
    name: resourceName(poolName, instanceId),
    idempotencyKey: `${workflowId}:${step}`,
  };
}

/** The environment a runtime gets from its resources: non-secret values plus its own secrets, decrypted. */
export async function resourceEnvironment(
  db: Db,
  secrets: SecretStore,
  instanceId: string,
): Promise<Record<string, string>> {
  const rows = await db
    .select()
    .from(instanceResources)
    .where(and(eq(instanceResources.instanceId, instanceId), eq(instanceResources.status, 'active')));
  const env: Record<string, string> = {};
  for (const row of rows) {
    // A wallet's private key is never handed to a runtime (nothing there uses it, and a signing key in the
    // process strangers talk to is pure risk: the pool's Bankr account pays, docs/providers.md "Bankr"),
    // including to instances started when it still was.
    if (row.kind === 'wallet') continue;
    const meta = row.metadata as ResourceMetadata;
    Object.assign(env, meta.env ?? {});
    if (meta.secretEnv) {
      const value = await secrets.get(instanceId, secretName(row.kind));
      if (value !== null) env[meta.secretEnv] = value;
    }
  }
  return env;
}

export function createResourceActivities(deps: ResourceDeps) {
  const adapter = (kind: string, name: string): ResourceProvider => {
    const p = deps.resources.enabled[kind as ResourceKind];
    if (!p || p.name !== name)
      throw new Error(`resource provider ${name} for ${kind} is not configured here`);
    return p;
  };

  return {
    /**
     * Which resources this instance gets, in creation order. Configured-out kinds are recorded on the
     * instance (`skipped`, with the reason) so operators see why an agent has no email, say.
     */
    async planResources(input: { instanceId: string }): Promise<ResourcePlanItem[]> {
      const plan: ResourcePlanItem[] = [];
      for (const kind of RESOURCE_KINDS) {
        const enabled = deps.resources.enabled[kind];
        if (enabled) {
          plan.push({ kind, provider: enabled.name });
          continue;
        }
        const disabled = deps.resources.disabled.find((d) => d.kind === kind);
        if (!disabled) continue;
        const metadata: ResourceMetadata = { reason: disabled.reason };
        await deps.db
          .insert(instanceResources)
          .values({
            instanceId: input.instanceId,
            kind,
            provider: disabled.name,
            ref: '',
            status: 'skipped',
            metadata,
          })
          .onConflictDoNothing();
      }
      return plan;
    },

    /**
     * Creates one resource, or adopts it: an active row means an earlier attempt finished; otherwise the
     * adapter itself adopts what exists at the provider under the instance's deterministic name.
     */
    async createResource(input: {
      instanceId: string;
      poolName: string;
      workflowId: string;
      kind: string;
      provider: string;
    }): Promise<ResourceRef> {
      const [existing] = await deps.db
        .select()
        .from(instanceResources)
        .where(
          and(eq(instanceResources.instanceId, input.instanceId), eq(instanceResources.kind, input.kind)),
        );
      if (existing?.status === 'active')
        return { kind: input.kind, provider: existing.provider, ref: existing.ref };

      const p = adapter(input.kind, input.provider);
      const ctx = resourceContext(input.instanceId, input.poolName, input.workflowId, `create-${input.kind}`);
      const created = await providerCall(() => p.create(ctx), {
        metrics: deps.metrics,
        provider: p.name,
        step: 'create',
      });
      if (created.secret)
        await deps.secrets.put(input.instanceId, secretName(input.kind), created.secret.value);
      const metadata: ResourceMetadata = {
        facts: created.metadata,
        env: created.env,
        ...(created.secret ? { secretEnv: created.secret.env } : {}),
      };
      await deps.db
        .insert(instanceResources)
        .values({
          instanceId: input.instanceId,
          kind: input.kind,
          provider: p.name,
          ref: created.ref,
          metadata,
        })
        .onConflictDoUpdate({
          target: [instanceResources.instanceId, instanceResources.kind],
          set: { provider: p.name, ref: created.ref, status: 'active', metadata, releasedAt: null },
        });
      return { kind: input.kind, provider: p.name, ref: created.ref };
    },

    /** Releases one resource (by ref, or found by name when its creation was never confirmed). */
    async releaseResource(input: {
      instanceId: string;
      poolName: string;
      workflowId: string;
      kind: string;
      provider: string;
      ref: string | null;
    }): Promise<void> {
      const p = adapter(input.kind, input.provider);
      const ctx = resourceContext(
        input.instanceId,
        input.poolName,
        input.workflowId,
        `release-${input.kind}`,
      );
      await providerCall(() => p.destroy(ctx, input.ref || null), {
        metrics: deps.metrics,
        provider: p.name,
        step: 'destroy',
      });
      await deps.db
        .update(instanceResources)
        .set({ status: 'released', releasedAt: new Date() })
        .where(
          and(
            eq(instanceResources.instanceId, input.instanceId),
            eq(instanceResources.kind, input.kind),
            eq(instanceResources.status, 'active'),
          ),
        );
      await deps.secrets.delete(input.instanceId, secretName(input.kind));
    },
  };
}
