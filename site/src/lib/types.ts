// Shapes of the pool API's responses (docs/api.md; the OpenAPI document at /api/openapi.json).

export interface TemplateSummary {
  slug: string;
  name: string;
  emoji: string;
  category: string;
  description: string;
  skills: string[];
}

export interface Template extends TemplateSummary {
  instructions: string;
}

export const COUNT_KEYS = [
  'starting',
  'idle',
  'claiming',
  'claimed',
  'crashed',
  'failed',
  'destroying',
] as const;
export type CountKey = (typeof COUNT_KEYS)[number];
export type Counts = Record<CountKey, number>;

export interface PoolInfo {
  environment: string;
  version: string;
  computeProvider: string;
  xmtpEnv: string;
  model: string;
  targetIdle: number;
  maxTotal: number;
  providers: Record<string, boolean>;
}

export interface Agent {
  id: string;
  status: string;
  agentName: string | null;
  templateSlug: string | null;
  conversationId: string | null;
  inviteUrl: string | null;
  createdAt: string | null;
  claimedAt: string | null;
  lastError: string | null;
}

// The groups GET /api/pool/agents answers (docs/api.md): every live status.
export const AGENT_GROUPS = [
  'claimed',
  'crashed',
  'idle',
  'starting',
  'failed',
  'claiming',
  'destroying',
] as const;
export type AgentGroups = Partial<Record<string, Agent[]>>;

export interface InstanceDetail extends Record<string, unknown> {
  id: string;
  status: string;
  resources?: Array<Record<string, unknown>>;
  events?: Array<Record<string, unknown>>;
}

export interface ClaimRequest {
  agentName?: string;
  instructions?: string;
  templateSlug?: string;
  joinUrl?: string;
  maxWaitMs?: number;
}

export interface ClaimResult {
  instanceId: string;
  agentName: string;
  conversationId: string | null;
  inviteUrl: string | null;
  joined: boolean;
  warm: boolean;
  chatUrl?: string;
}
