// The environment contract between the compute provider (the core) and the runtime. Parsed once at
// boot; anything invalid stops the runtime with a message naming the variable (never its value).
import path from 'node:path';
import { DEFAULT_SCHEDULE_LIMITS, type ScheduleLimits } from './scheduler.ts';

export type XmtpEnv = 'dev' | 'production' | 'local' | 'off';

export type ModelConfig =
  | { kind: 'openrouter'; apiKey: string; model: string }
  | { kind: 'openai-compatible'; baseUrl: string; apiKey: string | null; model: string }
  // No model configured: the runtime still boots, and every reply says how to configure one (no-model.ts).
  | { kind: 'none' };

/** The instance's own inbox (AgentMail id); the pool sends from it, with the pool's key. */
export interface EmailIdentity {
  inboxId: string;
}

/** The instance's own number (E.164); the pool sends from it, with the pool's key. */
export interface SmsIdentity {
  phoneNumber: string;
}

export interface RuntimeEnv {
  instanceId: string;
  instanceToken: string;
  port: number;
  host: string;
  /** Where people reach the control server (chat page links); defaults to http://<host>:<port>. */
  publicUrl: string;
  stateDir: string;
  poolApiUrl: string | null;
  xmtpEnv: XmtpEnv;
  model: ModelConfig;
  /** Fixed gateway port (optional; otherwise a free loopback port is picked at boot). */
  gatewayPort: number | null;
  /** Set when the instance has an inbox and a pool to send through (POOL_API_URL). */
  email: EmailIdentity | null;
  /** Set when the instance has a number and a pool to send through (POOL_API_URL). */
  sms: SmsIdentity | null;
  /** The pool pays on the instance's behalf (POOL_PAYMENTS=on, set by a pool with a Bankr key). */
  payments: boolean;
  /** Bounds on the messages the agent schedules per conversation (SCHEDULE_* variables). */
  schedule: ScheduleLimits;
  /** How often an unclaimed instance's gateway runs the warm-up turn again (GATEWAY_KEEP_WARM_SECONDS; 0: never). */
  keepWarmMs: number;
}

export class EnvError extends Error {}

/**
 * Inside OpenClaw's idle windows (measured, docs/runtime.md "Keeping warm while idle": worker pools retired after
 * 30 s idle, the agent database's store after 60 s, a per-turn refresh every ~45–55 s that needs a worker).
 */
export const DEFAULT_KEEP_WARM_SECONDS = 20;

export const DEFAULT_OPENROUTER_MODEL = 'openai/gpt-4o-mini';
export const DEFAULT_OPENAI_COMPATIBLE_MODEL = 'gpt-4o-mini';

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new EnvError(`${name} is required`);
  return value;
}

function optional(env: NodeJS.ProcessEnv, name: string): string | null {
  const value = env[name]?.trim();
  return value ? value : null;
}

function parsePort(name: string, raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new EnvError(`${name} must be a TCP port`);
  return port;
}

function parseUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new EnvError(`${name} must be a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EnvError(`${name} must be http(s)`);
  return raw.replace(/\/+$/, '');
}

function parseModel(env: NodeJS.ProcessEnv): ModelConfig {
  const baseUrl = optional(env, 'MODEL_BASE_URL');
  const openRouterKey = optional(env, 'OPENROUTER_API_KEY');
  const model = optional(env, 'MODEL');
  // An explicit base URL wins: it is how a developer points an instance at a local model server
  // even when an OpenRouter key is also around.
  if (baseUrl) {
    return {
      kind: 'openai-compatible',
      baseUrl: parseUrl('MODEL_BASE_URL', baseUrl),
      apiKey: optional(env, 'MODEL_API_KEY'),
      model: model ?? DEFAULT_OPENAI_COMPATIBLE_MODEL,
    };
  }
  if (openRouterKey) {
    // OpenRouter model ids may be given with or without the "openrouter/" prefix.
    const id = (model ?? DEFAULT_OPENROUTER_MODEL).replace(/^openrouter\//, '');
    return { kind: 'openrouter', apiKey: openRouterKey, model: id };
  }
  return { kind: 'none' };
}

function parseXmtpEnv(raw: string | null): XmtpEnv {
  const value = raw ?? 'off';
  if (value === 'dev' || value === 'production' || value === 'local' || value === 'off') return value;
  throw new EnvError('XMTP_ENV must be dev, production, local or off');
}

/** A whole number in [min, max] from the variable, or the default when unset. */
function boundedInt(
  env: NodeJS.ProcessEnv,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const raw = optional(env, name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max)
    throw new EnvError(`${name} must be a whole number from ${min} to ${max}`);
  return value;
}

function parseScheduleLimits(env: NodeJS.ProcessEnv): ScheduleLimits {
  const d = DEFAULT_SCHEDULE_LIMITS;
  return {
    maxPending: boundedInt(env, 'SCHEDULE_MAX_PENDING', 0, 100, d.maxPending),
    minGapMs: boundedInt(env, 'SCHEDULE_MIN_GAP_SECONDS', 1, 86_400, d.minGapMs / 1000) * 1000,
    maxAheadMs: boundedInt(env, 'SCHEDULE_MAX_AHEAD_DAYS', 1, 365, d.maxAheadMs / 86_400_000) * 86_400_000,
  };
}

export function loadEnv(env: NodeJS.ProcessEnv): RuntimeEnv {
  const port = parsePort('PORT', required(env, 'PORT'));
  const host = optional(env, 'HOST') ?? '127.0.0.1';
  const instanceToken = required(env, 'INSTANCE_TOKEN');
  if (instanceToken.length < 16) throw new EnvError('INSTANCE_TOKEN must be at least 16 characters');
  const linkHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const publicUrl = optional(env, 'PUBLIC_URL');
  const gatewayPort = optional(env, 'GATEWAY_PORT');

  const poolApiUrl = optional(env, 'POOL_API_URL');
  const inboxId = optional(env, 'AGENTMAIL_INBOX_ID');
  const phoneNumber = optional(env, 'TELNYX_PHONE_NUMBER');

  return {
    instanceId: required(env, 'INSTANCE_ID'),
    instanceToken,
    port,
    host,
    publicUrl: publicUrl
      ? parseUrl('PUBLIC_URL', publicUrl)
      : `http://${linkHost.includes(':') ? `[${linkHost}]` : linkHost}:${port}`,
    stateDir: path.resolve(required(env, 'STATE_DIR')),
    poolApiUrl: poolApiUrl ? parseUrl('POOL_API_URL', poolApiUrl) : null,
    xmtpEnv: parseXmtpEnv(optional(env, 'XMTP_ENV')),
    model: parseModel(env),
    gatewayPort: gatewayPort ? parsePort('GATEWAY_PORT', gatewayPort) : null,
    // The pool sends on the instance's behalf (org-wide provider keys never reach an instance): a skill is
    // enabled only with the instance's own inbox/number and a pool to send through.
    email: inboxId && poolApiUrl ? { inboxId } : null,
    sms: phoneNumber && poolApiUrl ? { phoneNumber } : null,
    payments: optional(env, 'POOL_PAYMENTS') === 'on' && poolApiUrl !== null,
    schedule: parseScheduleLimits(env),
    keepWarmMs: boundedInt(env, 'GATEWAY_KEEP_WARM_SECONDS', 0, 3600, DEFAULT_KEEP_WARM_SECONDS) * 1000,
  };
}
