/**
 * What a template promises, as the API tells it: the public template info says, per skill, whether this
 * deployment can deliver it and why not (a provider not configured, no web search), and the claim answer says
 * it for the claimed agent, from the resources its start created. Real stack, AgentMail stand-in for the
 * inboxes, Telnyx configured out. The catalog loader refuses a skill the skill contract does not define.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentMailInboxes } from '../activities/providers/agentmail';
import { loadCatalog } from '../catalog/seed';
import { disabledReason } from '../config/env';
import { NO_WEB_SEARCH_REASON, type SkillAvailability } from '../contracts/template-skills';
import { recordSecrets, type Stack, startStack } from './stack';
import { type AgentMailStandin, startAgentMailStandin } from './standins/agentmail-standin';
import { json, newKey, shared } from './support/helpers';

let stack: Stack;
let agentmail: AgentMailStandin;

beforeAll(async () => {
  agentmail = await startAgentMailStandin();
  recordSecrets(agentmail.apiKey);
  stack = await startStack(
    shared({
      targetIdle: 2,
      maxTotal: 10,
      env: { AGENTMAIL_API_KEY: agentmail.apiKey, AGENTMAIL_BASE_URL: agentmail.baseUrl },
      resourcesFor: () => ({
        enabled: { inbox: new AgentMailInboxes({ apiKey: agentmail.apiKey, baseUrl: agentmail.baseUrl }) },
        disabled: [{ kind: 'phone', name: 'telnyx', reason: disabledReason('telnyx') }],
      }),
    }),
  );
  await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
});
afterAll(async () => {
  await stack?.stop();
  await agentmail?.close();
});

interface TemplateInfo {
  slug: string;
  skills: string[];
  skillAvailability: SkillAvailability[];
}

const templateInfo = async (slug: string) => {
  const res = await fetch(`${stack.apiUrl}/api/pool/templates/${slug}`);
  expect(res.status).toBe(200);
  return json<TemplateInfo>(res);
};

const claimTemplate = async (templateSlug: string) => {
  await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
  const res = await stack.api(
    'POST',
    '/api/pool/claim',
    { templateSlug },
    { 'idempotency-key': newKey(templateSlug) },
  );
  expect(res.status).toBe(200);
  return json<{ instanceId: string; skillAvailability: SkillAvailability[] }>(res);
};

describe('what a template promises, per deployment and per agent', () => {
  it('the template info says per skill whether this deployment delivers it, and why not', async () => {
    const list = await json<TemplateInfo[]>(await fetch(`${stack.apiUrl}/api/pool/templates`));
    expect(list.length).toBe(loadCatalog().templates.length);
    for (const t of list) expect(t.skillAvailability.map((s) => s.skill)).toEqual(t.skills);

    // AgentMail configured: email is promised.
    expect((await templateInfo('inbox-triage')).skillAvailability).toEqual([
      { skill: 'email', available: true, reason: null },
      { skill: 'summarizing', available: true, reason: null },
    ]);
    // Telnyx is not: the SMS skill says so instead of promising it.
    const event = await templateInfo('event-organizer');
    expect(event.skillAvailability).toEqual([
      { skill: 'planning', available: true, reason: null },
      // Every agent can schedule messages in its conversation: nothing to configure.
      { skill: 'reminders', available: true, reason: null },
      {
        skill: 'sms',
        available: false,
        reason:
          'agents here get no phone number: telnyx is not configured (TELNYX_API_KEY and TELNYX_MESSAGING_PROFILE_ID not set)',
      },
    ]);
    // No search provider on the runtime: web search is shown as not available.
    expect((await templateInfo('fact-checker')).skillAvailability).toEqual([
      { skill: 'web-search', available: false, reason: NO_WEB_SEARCH_REASON },
    ]);
  });

  it('the claim answer says it for the claimed agent, from its own resources', async () => {
    const triage = await claimTemplate('inbox-triage');
    expect(triage.skillAvailability).toEqual([
      { skill: 'email', available: true, reason: null },
      { skill: 'summarizing', available: true, reason: null },
    ]);
    expect(agentmail.inventory.list().length).toBeGreaterThan(0);

    const event = await claimTemplate('event-organizer');
    expect(event.skillAvailability).toEqual([
      { skill: 'planning', available: true, reason: null },
      // Every agent can schedule messages in its conversation: nothing to configure.
      { skill: 'reminders', available: true, reason: null },
      {
        skill: 'sms',
        available: false,
        reason: `this agent has no phone number: ${disabledReason('telnyx')}`,
      },
    ]);

    // Without a template there is nothing to promise.
    await stack.waitFor('an idle instance', async () => (await stack.counts()).idle > 0);
    const plain = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Plain' },
      { 'idempotency-key': newKey('plain') },
    );
    expect(plain.status).toBe(200);
    expect((await json<{ skillAvailability: unknown[] }>(plain)).skillAvailability).toEqual([]);
  });

  it('the catalog loader refuses a skill the skill contract does not define', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catalog-'));
    try {
      const catalog = loadCatalog();
      const first = catalog.templates[0];
      if (!first) throw new Error('empty catalog');
      const file = path.join(dir, 'templates.json');
      fs.writeFileSync(
        file,
        JSON.stringify({ ...catalog, templates: [{ ...first, skills: ['teleportation'] }] }),
      );
      expect(() => loadCatalog(file)).toThrow(/lists unknown skills teleportation/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
