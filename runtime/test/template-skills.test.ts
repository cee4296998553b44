// What the catalog's templates promise, checked against what an instance really has: every skill a template
// lists is in the shared skill contract, and every tool the contract names exists in the runtime — the
// instance-tools plugin's manifest and its registration, the runtime's skills, OpenClaw's own tool registry
// and the tool policy and plugins of the openclaw.json the runtime writes.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  NO_WEB_SEARCH_REASON,
  type SkillNeed,
  skillAvailability,
  TEMPLATE_SKILLS,
} from '../../contracts/template-skills.ts';
import instanceTools from '../extensions/instance-tools/index.ts';
import { loadEnv } from '../src/env.ts';
import { buildOpenClawConfig } from '../src/openclaw-config.ts';
import { instanceToolsExtensionDir, runtimeRoot, skillsDir, statePaths } from '../src/paths.ts';

const catalog = JSON.parse(
  readFileSync(path.join(runtimeRoot, '..', 'catalog', 'templates.json'), 'utf8'),
) as {
  templates: { slug: string; skills: string[]; instructions: string }[];
};
const needs = Object.entries(TEMPLATE_SKILLS) as [string, SkillNeed][];

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: the generated config is untyped JSON, read by key path only
type ConfigTree = Record<string, any>;

/** The openclaw.json of an instance with these variables (an inbox, a number, a pool to send through). */
function configFor(extra: Record<string, string>): ConfigTree {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'skills-config-'));
  dirs.push(stateDir);
  const env = loadEnv({
    INSTANCE_ID: 'i',
    INSTANCE_TOKEN: '0123456789abcdef0123',
    PORT: '18000',
    STATE_DIR: stateDir,
    OPENROUTER_API_KEY: 'sk-or-test',
    ...extra,
  });
  return buildOpenClawConfig({ env, paths: statePaths(stateDir), gatewayPort: 18001 }) as ConfigTree;
}

/** A tool as registered: itself, or a factory that gives it for a turn (with the names it declares). */
type Registered = { name: string } | ((ctx: { sessionKey?: string }) => { name: string } | null);

/** The tools the instance-tools plugin registers with these variables (its real `register`). */
function registeredTools(vars: Record<string, string>): string[] {
  return registrations(vars).map((r) => r.name);
}

function registrations(vars: Record<string, string>): { name: string; tool: Registered }[] {
  const names: { name: string; tool: Registered }[] = [];
  const saved = { ...process.env };
  Object.assign(process.env, vars);
  try {
    instanceTools.register({
      registerTool: (tool: Registered, opts?: { names?: string[] }) => {
        if (typeof tool === 'function') for (const name of opts?.names ?? []) names.push({ name, tool });
        else names.push({ name: tool.name, tool });
      },
    } as never);
  } finally {
    for (const k of Object.keys(vars)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return names;
}

/** A runtime skill's front matter: its name and the variables it requires. */
function runtimeSkill(name: string): { name: string; requiresEnv: string[] } | null {
  let text: string;
  try {
    text = readFileSync(path.join(skillsDir, name, 'SKILL.md'), 'utf8');
  } catch {
    return null;
  }
  const front = /^---\n([\s\S]*?)\n---/.exec(text)?.[1] ?? '';
  const meta = /^metadata:\s*(\{.*\})\s*$/m.exec(front)?.[1];
  return {
    name: /^name:\s*(\S+)/m.exec(front)?.[1] ?? '',
    requiresEnv: meta ? (JSON.parse(meta).openclaw?.requires?.env ?? []) : [],
  };
}

/** The tool names in OpenClaw's own registry of core tools (its bundled descriptors). */
function openclawCoreTools(): Set<string> {
  const dist = path.join(runtimeRoot, 'node_modules', 'openclaw', 'dist');
  const file = readdirSync(dist).find((f) => /^core-tool-factory-descriptors-.*\.mjs$/.test(f));
  if (!file) throw new Error(`no core tool descriptors in ${dist}: OpenClaw changed its layout`);
  const text = readFileSync(path.join(dist, file), 'utf8');
  return new Set([...text.matchAll(/name: "([a-z_]+)"/g)].map((m) => m[1] as string));
}

/** The bundled OpenClaw plugins that provide a web search provider. */
function webSearchPlugins(): string[] {
  const dir = path.join(runtimeRoot, 'node_modules', 'openclaw', 'dist', 'extensions');
  return readdirSync(dir).filter((id) => {
    try {
      const manifest = JSON.parse(readFileSync(path.join(dir, id, 'openclaw.plugin.json'), 'utf8'));
      return (manifest.contracts?.webSearchProviders ?? []).length > 0;
    } catch {
      return false;
    }
  });
}

describe('what the catalog templates promise', () => {
  it('every skill of every template is one the skill contract defines', () => {
    expect(catalog.templates.length).toBeGreaterThanOrEqual(30);
    const unknown = catalog.templates.flatMap((t) =>
      t.skills.filter((s) => !Object.hasOwn(TEMPLATE_SKILLS, s)).map((s) => `${t.slug}: ${s}`),
    );
    expect(unknown).toEqual([]);
  });

  it('every instance tool exists in the instance-tools plugin, with its runtime skill, only with its resource', () => {
    const manifest = JSON.parse(
      readFileSync(path.join(instanceToolsExtensionDir, 'openclaw.plugin.json'), 'utf8'),
    );
    const declared: string[] = manifest.contracts.tools;
    const pool = { POOL_API_URL: 'http://127.0.0.1:1', CONVOS_OUTBOUND_URL: 'http://127.0.0.1:2' };
    const token = { OPENCLAW_GATEWAY_TOKEN: 'gateway-token-0123456789' };
    const instanceNeeds = needs.filter(([, n]) => n.kind === 'instance-tool');
    expect(instanceNeeds.length).toBeGreaterThan(0);
    for (const [skill, need] of instanceNeeds) {
      if (need.kind !== 'instance-tool') continue;
      expect(declared, skill).toContain(need.tool);
      const value = need.env === 'TELNYX_PHONE_NUMBER' ? '+15551234567' : 'agent@example.test';
      // The plugin registers the tool with the resource's variable, and not without it.
      expect(
        registeredTools({ ...token, CONVOS_OUTBOUND_URL: pool.CONVOS_OUTBOUND_URL, [need.env]: value }),
      ).toContain(need.tool);
      expect(registeredTools({ ...token, CONVOS_OUTBOUND_URL: pool.CONVOS_OUTBOUND_URL })).not.toContain(
        need.tool,
      );
      // The runtime skill exists and requires the same variable.
      const doc = runtimeSkill(need.runtimeSkill);
      expect(doc?.name, skill).toBe(need.runtimeSkill);
      expect(doc?.requiresEnv, skill).toContain(need.env);
      // The openclaw.json loads the plugin and enables the skill with the resource, not without it.
      const withIt = configFor({ POOL_API_URL: pool.POOL_API_URL, [need.env]: value });
      expect(withIt.plugins.allow).toContain('instance-tools');
      expect(withIt.skills.entries[need.runtimeSkill]?.enabled, skill).toBe(true);
      const without = configFor({ POOL_API_URL: pool.POOL_API_URL });
      expect(without.skills.entries[need.runtimeSkill]?.enabled, skill).toBe(false);
    }
  });

  it('web search is an OpenClaw tool the policy allows, and no search provider is loaded: shown as not available', () => {
    const core = openclawCoreTools();
    expect(core.size).toBeGreaterThan(20);
    const searchNeeds = needs.filter(([, n]) => n.kind === 'web-search-tool');
    expect(searchNeeds.length).toBeGreaterThan(0);
    const config = configFor({ AGENTMAIL_INBOX_ID: 'a@example.test', POOL_API_URL: 'http://127.0.0.1:1' });
    for (const [skill, need] of searchNeeds) {
      if (need.kind !== 'web-search-tool') continue;
      expect(core, skill).toContain(need.tool);
      expect(config.tools.alsoAllow).toContain(need.tool);
      expect(config.tools.deny).not.toContain(need.tool);
    }
    // Why the contract calls it unavailable: none of OpenClaw's search provider plugins is allowed to load.
    // When the runtime starts loading one, this fails: then update the contract's NO_WEB_SEARCH_REASON.
    const providers = webSearchPlugins();
    expect(providers.length).toBeGreaterThan(0);
    for (const id of providers) expect(config.plugins.allow).not.toContain(id);
    expect(skillAvailability(['web-search'], { inbox: null, phone: null })).toEqual([
      { skill: 'web-search', available: false, reason: NO_WEB_SEARCH_REASON },
    ]);
  });

  it('reminders: the schedule tools exist on every instance, offered in a conversation turn only, not through OpenClaw cron', () => {
    const conversationNeeds = needs.filter(([, n]) => n.kind === 'conversation-tool');
    expect(conversationNeeds.map(([skill]) => skill)).toContain('reminders');
    const manifest = JSON.parse(
      readFileSync(path.join(instanceToolsExtensionDir, 'openclaw.plugin.json'), 'utf8'),
    );
    // No inbox, no number, no payments, no pool: the plugin still loads and registers the tools.
    const config = configFor({});
    expect(config.plugins.allow).toContain('instance-tools');
    expect(config.plugins.entries['instance-tools']).toEqual({ enabled: true });
    const registered = registrations({
      CONVOS_OUTBOUND_URL: 'http://127.0.0.1:2',
      OPENCLAW_GATEWAY_TOKEN: 'gateway-token-0123456789',
    });
    for (const [skill, need] of conversationNeeds) {
      if (need.kind !== 'conversation-tool') continue;
      expect(manifest.contracts.tools, skill).toContain(need.tool);
      const entry = registered.find((r) => r.name === need.tool);
      expect(entry, skill).toBeDefined();
      const factory = entry?.tool;
      if (typeof factory !== 'function') throw new Error(`${need.tool} is not bound to the turn`);
      // A Convos group's turn and a chat page tab's turn get it; the runtime's own sessions do not.
      expect(factory({ sessionKey: 'agent:main:convos:group:0123456789abcdef0123' })?.name).toBe(need.tool);
      expect(factory({ sessionKey: 'agent:main:openai-user:chat-session-1234' })?.name).toBe(need.tool);
      expect(factory({ sessionKey: 'agent:main:openai-user:inbound-events' })).toBeNull();
      expect(factory({})).toBeNull();
    }
    // The templates that promise reminders tell the agent to use the tool, and what it cannot do then.
    const reminding = catalog.templates.filter((t) => t.skills.includes('reminders'));
    expect(reminding.length).toBeGreaterThanOrEqual(10);
    for (const t of reminding) {
      expect(t.instructions, t.slug).toContain('schedule_message');
      expect(t.instructions, t.slug).not.toMatch(/cannot post later|set one on their phone/);
    }
    // OpenClaw's own scheduler stays off and its automation tools denied (docs/runtime.md says why).
    expect(config.cron.enabled).toBe(false);
    expect(config.tools.deny).toContain('group:automation');
    expect(skillAvailability(['reminders'], { inbox: 'no inbox', phone: 'no phone' })).toEqual([
      { skill: 'reminders', available: true, reason: null },
    ]);
  });
});
