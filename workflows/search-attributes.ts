/** Search attributes operators filter by in the Web UI. Values are never secret (they are not encrypted). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const InstanceStatusKey = defineSearchAttributeKey('InstanceStatus', SearchAttributeType.KEYWORD);
/**
 * Deprecated: upserted only when replaying claims recorded before `Patch.noAgentNameAttribute` (an agent name
 * is user data, and search attributes are never encrypted). No longer registered on new namespaces.
 */
export const AgentNameKey = defineSearchAttributeKey('AgentName', SearchAttributeType.KEYWORD);
export const TemplateSlugKey = defineSearchAttributeKey('TemplateSlug', SearchAttributeType.KEYWORD);
export const ComputeProviderKey = defineSearchAttributeKey('ComputeProvider', SearchAttributeType.KEYWORD);
export const PoolNameKey = defineSearchAttributeKey('PoolName', SearchAttributeType.KEYWORD);
/** The runtime version an instance runs (an image id, a source hash): what a rolling upgrade is replacing. */
export const RuntimeVersionKey = defineSearchAttributeKey('RuntimeVersion', SearchAttributeType.KEYWORD);
