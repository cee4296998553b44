import { join } from 'node:path';
import type { XmtpEnv } from './xmtp/types.js';

/**
 * Where the channel's settings come from: `channels.convos` in the OpenClaw config first, then the
 * environment the control server gives the gateway (XMTP_ENV, CONVOS_STATE_DIR; STATE_DIR as a
 * fallback). The state dir must be explicit: XMTP databases never land in the working directory.
 */

export interface ConvosSection {
  enabled?: boolean;
  env?: string;
  stateDir?: string;
  joinWaitMs?: number;
}

export type ConvosSettings =
  | { enabled: true; env: XmtpEnv; stateDir: string; joinWaitMs: number }
  | { enabled: false; reason: string };

const XMTP_ENVS = new Set(['dev', 'production', 'local']);
export const DEFAULT_JOIN_WAIT_MS = 15_000;

export function convosSection(cfg: unknown): ConvosSection {
  const section = (cfg as { channels?: Record<string, unknown> } | undefined)?.channels?.convos;
  return section && typeof section === 'object' ? (section as ConvosSection) : {};
}

export function resolveSettings(
  section: ConvosSection,
  env: NodeJS.ProcessEnv = process.env,
): ConvosSettings {
  if (section.enabled === false) return { enabled: false, reason: 'channels.convos.enabled is false' };
  const xmtpEnv = (section.env ?? env.XMTP_ENV ?? '').trim();
  if (xmtpEnv === 'off') return { enabled: false, reason: 'XMTP_ENV=off' };
  if (!XMTP_ENVS.has(xmtpEnv))
    return { enabled: false, reason: `XMTP_ENV must be dev, production, local or off (got "${xmtpEnv}")` };
  const stateDir =
    section.stateDir ?? env.CONVOS_STATE_DIR ?? (env.STATE_DIR ? join(env.STATE_DIR, 'convos') : undefined);
  if (!stateDir)
    return { enabled: false, reason: 'no state dir: set CONVOS_STATE_DIR or channels.convos.stateDir' };
  const joinWaitMs =
    typeof section.joinWaitMs === 'number' && section.joinWaitMs >= 0
      ? section.joinWaitMs
      : DEFAULT_JOIN_WAIT_MS;
  return { enabled: true, env: xmtpEnv as XmtpEnv, stateDir, joinWaitMs };
}
