/**
 * What each skill a catalog template lists needs from an instance, written once for the catalog, the API
 * (the claim answer and the public template info), the site and the runtime's check of it
 * (runtime/test/template-skills.test.ts walks every template against the runtime's real tool registry).
 * Plain TypeScript with no imports.
 *
 * A skill is either a language ability (the model alone) or a tool of the instance. A tool skill says where
 * the tool comes from and what it needs; when that is missing in this deployment, the skill is shown as not
 * available, with the reason, instead of being promised.
 */

/** An instance resource a tool needs (activities/providers/types.ts `ResourceKind`), and its provider. */
export type SkillResource = 'inbox' | 'phone';

export type SkillNeed =
  /** A language ability: nothing beyond the model. */
  | { kind: 'model' }
  /** A tool of the runtime's instance-tools plugin, with its runtime skill, registered only with the resource. */
  | {
      kind: 'instance-tool';
      tool: string;
      runtimeSkill: string;
      resource: SkillResource;
      /** The runtime variable the resource gives the instance (the plugin and the skill require it). */
      env: string;
    }
  /**
   * A tool of the runtime's instance-tools plugin that every instance has, offered in a turn of its
   * conversation (the schedule tools: runtime/src/scheduler.ts).
   */
  | { kind: 'conversation-tool'; tool: string }
  /** A tool of OpenClaw itself, allowed by the runtime's tool policy, that needs a search provider. */
  | { kind: 'web-search-tool'; tool: string };

export const TEMPLATE_SKILLS = {
  // Language abilities: the model does them in the conversation, no tool.
  checklists: { kind: 'model' },
  coaching: { kind: 'model' },
  cooking: { kind: 'model' },
  discussion: { kind: 'model' },
  diy: { kind: 'model' },
  editing: { kind: 'model' },
  fitness: { kind: 'model' },
  games: { kind: 'model' },
  marketing: { kind: 'model' },
  math: { kind: 'model' },
  planning: { kind: 'model' },
  polls: { kind: 'model' },
  shopping: { kind: 'model' },
  'shopping-list': { kind: 'model' },
  summarizing: { kind: 'model' },
  teaching: { kind: 'model' },
  translation: { kind: 'model' },
  writing: { kind: 'model' },
  // Tools.
  // One message posted later in the conversation, as written when asked (not a model turn at that time).
  reminders: { kind: 'conversation-tool', tool: 'schedule_message' },
  email: {
    kind: 'instance-tool',
    tool: 'send_email',
    runtimeSkill: 'email',
    resource: 'inbox',
    env: 'AGENTMAIL_INBOX_ID',
  },
  sms: {
    kind: 'instance-tool',
    tool: 'send_sms',
    runtimeSkill: 'sms',
    resource: 'phone',
    env: 'TELNYX_PHONE_NUMBER',
  },
  'web-search': { kind: 'web-search-tool', tool: 'web_search' },
} as const satisfies Record<string, SkillNeed>;

export type TemplateSkill = keyof typeof TEMPLATE_SKILLS;

export function isTemplateSkill(skill: string): skill is TemplateSkill {
  return Object.hasOwn(TEMPLATE_SKILLS, skill);
}

/**
 * Why web search is not available: OpenClaw's `web_search` needs a search provider plugin (Brave, Gemini,
 * Perplexity…), and the runtime loads none (runtime/src/openclaw-config.ts `plugins.allow`); the runtime's
 * test fails when that changes, so this sentence cannot go stale.
 */
export const NO_WEB_SEARCH_REASON =
  'web search is not set up for these agents (the agent runtime has no search provider configured)';

/** One skill of a template as this deployment (or one instance) can deliver it. */
export interface SkillAvailability {
  skill: string;
  available: boolean;
  /** Why not, when not available (a sentence for the page and the claim answer); null when available. */
  reason: string | null;
}

/** For each resource a skill can need: null when present, else why it is missing. */
export type MissingResources = Record<SkillResource, string | null>;

/** The availability of each skill of a template, in the template's order. */
export function skillAvailability(skills: readonly string[], missing: MissingResources): SkillAvailability[] {
  return skills.map((skill) => {
    if (!isTemplateSkill(skill))
      return { skill, available: false, reason: `"${skill}" is not a skill this platform knows` };
    const need: SkillNeed = TEMPLATE_SKILLS[skill];
    if (need.kind === 'model' || need.kind === 'conversation-tool')
      return { skill, available: true, reason: null };
    if (need.kind === 'web-search-tool') return { skill, available: false, reason: NO_WEB_SEARCH_REASON };
    const reason = missing[need.resource];
    return reason === null ? { skill, available: true, reason: null } : { skill, available: false, reason };
  });
}
