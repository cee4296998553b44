// The agent's workspace: the files OpenClaw re-reads every turn (AGENTS.md, SOUL.md, IDENTITY.md,
// USER.md). Rendered from runtime/workspace/ with the claim's name and instructions. Rewritten at every
// boot and at provision, so template changes ship with the image while the claim's data (kept in the
// provision record) survives restarts. Files the agent itself creates (MEMORY.md, memory/) are untouched.
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { workspaceTemplatesDir } from './paths.ts';

export interface AgentProfile {
  agentName: string;
  instructions: string;
}

/** Before a claim: a neutral agent, so a warm instance can already answer sanely. */
export const UNCLAIMED_PROFILE: AgentProfile = {
  agentName: 'Assistant',
  instructions: '(No specific instructions yet.)',
};

export function renderTemplate(template: string, profile: AgentProfile): string {
  // One pass with a function replacement: values are inserted literally ($&, $1 … stay as typed) and
  // a placeholder inside the instructions is never expanded again.
  return template.replace(/\{\{(agentName|instructions)\}\}/g, (_m, key: 'agentName' | 'instructions') =>
    key === 'agentName' ? profile.agentName : profile.instructions.trim() || '(none)',
  );
}

export function writeWorkspace(
  workspaceDir: string,
  profile: AgentProfile,
  templatesDir = workspaceTemplatesDir,
): string[] {
  mkdirSync(workspaceDir, { recursive: true });
  const written: string[] = [];
  for (const name of readdirSync(templatesDir)
    .filter((f) => f.endsWith('.md'))
    .sort()) {
    const content = renderTemplate(readFileSync(path.join(templatesDir, name), 'utf8'), profile);
    const target = path.join(workspaceDir, name);
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, content);
    renameSync(tmp, target);
    written.push(name);
  }
  return written;
}
