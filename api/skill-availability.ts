/**
 * Which of a template's skills this deployment — or one claimed instance — can deliver, and why not
 * (contracts/template-skills.ts says what each skill needs). The public template info answers for the
 * deployment (its configured providers); the claim answer for the instance (the resources its start
 * created or skipped, which is what its runtime really has).
 */
import { eq } from 'drizzle-orm';
import { type Config, disabledReason } from '../config/env';
import type { ResourceMetadata } from '../contracts/resources';
import type { MissingResources, SkillResource } from '../contracts/template-skills';
import type { Db } from '../drizzle/client';
import { instanceResources } from '../drizzle/schema';

const RESOURCE_NAMES: Record<SkillResource, { noun: string; provider: 'agentmail' | 'telnyx' }> = {
  inbox: { noun: 'email inbox', provider: 'agentmail' },
  phone: { noun: 'phone number', provider: 'telnyx' },
};

/** What this deployment gives every new instance, by its configured providers. */
export function deploymentMissing(config: Config): MissingResources {
  const missing = (r: SkillResource) => {
    const { noun, provider } = RESOURCE_NAMES[r];
    return config.providers[provider] ? null : `agents here get no ${noun}: ${disabledReason(provider)}`;
  };
  return { inbox: missing('inbox'), phone: missing('phone') };
}

/** What one instance has: its active resources; a skipped one carries the reason recorded at its start. */
export async function instanceMissing(db: Db, instanceId: string): Promise<MissingResources> {
  const rows = await db
    .select({
      kind: instanceResources.kind,
      status: instanceResources.status,
      metadata: instanceResources.metadata,
    })
    .from(instanceResources)
    .where(eq(instanceResources.instanceId, instanceId));
  const missing = (r: SkillResource) => {
    const row = rows.find((x) => x.kind === r);
    if (row?.status === 'active') return null;
    const why = (row?.metadata as ResourceMetadata | undefined)?.reason;
    return `this agent has no ${RESOURCE_NAMES[r].noun}${why ? `: ${why}` : ''}`;
  };
  return { inbox: missing('inbox'), phone: missing('phone') };
}
