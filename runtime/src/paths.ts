// Where things live: the runtime's own files (next to this package) and the instance's state (STATE_DIR).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The runtime package root (runtime/), whatever the process's working directory is. */
export const runtimeRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const convosExtensionDir = path.join(runtimeRoot, 'extensions', 'convos');
export const instanceToolsExtensionDir = path.join(runtimeRoot, 'extensions', 'instance-tools');
export const skillsDir = path.join(runtimeRoot, 'skills');
export const workspaceTemplatesDir = path.join(runtimeRoot, 'workspace');
export const openclawEntry = path.join(runtimeRoot, 'node_modules', 'openclaw', 'openclaw.mjs');

export interface StatePaths {
  root: string;
  /** OPENCLAW_STATE_DIR: openclaw.json, sessions, SQLite state. */
  openclaw: string;
  configFile: string;
  workspace: string;
  /** The convos plugin's XMTP identities, DB keys and DB files. */
  convos: string;
  provisionRecord: string;
  /** Inbound emails and SMS from the pool, until the agent took them (src/inbound.ts). */
  inbound: string;
  /** Messages the agent scheduled in its conversation (src/scheduler.ts). */
  scheduled: string;
  /** The last conversation activity (`/pool/health.lastActivityAt`). */
  activity: string;
  /** The reports the pool acknowledged (src/pool-reports.ts): each is sent once. */
  poolReports: string;
  logs: string;
}

export function statePaths(stateDir: string): StatePaths {
  const openclaw = path.join(stateDir, 'openclaw');
  return {
    root: stateDir,
    openclaw,
    configFile: path.join(openclaw, 'openclaw.json'),
    workspace: path.join(stateDir, 'workspace'),
    convos: path.join(stateDir, 'convos'),
    provisionRecord: path.join(stateDir, 'provision.json'),
    inbound: path.join(stateDir, 'inbound.json'),
    scheduled: path.join(stateDir, 'scheduled.json'),
    activity: path.join(stateDir, 'activity.json'),
    poolReports: path.join(stateDir, 'pool-reports.json'),
    logs: path.join(stateDir, 'logs'),
  };
}
