/** Search attributes operators filter by in the Web UI. Values are never secret (they are not encrypted). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const InstanceStatusKey = defineSearchAttributeKey('InstanceStatus', SearchAttributeType.KEYWORD);
export const AgentNameKey = defineSearchAttributeKey('AgentName', SearchAttributeType.KEYWORD);
export const TemplateSlugKey = defineSearchAttributeKey('TemplateSlug', SearchAttributeType.KEYWORD);
export const ComputeProviderKey = defineSearchAttributeKey('ComputeProvider', SearchAttributeType.KEYWORD);
export const PoolNameKey = defineSearchAttributeKey('PoolName', SearchAttributeType.KEYWORD);
