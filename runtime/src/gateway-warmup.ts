// The warm-up turn: OpenClaw loads most of its agent runtime lazily on the first turn (the embedded
// agent and its tool/skill modules, the agent's SQLite database and its integrity check, the session
// store, the model transport), which made the first message after a claim take ~11–15 s against ~0.3 s
// for later ones. The supervisor runs one throwaway turn after every gateway start and before it reports
// the gateway ready, so that cost is paid while the instance is `starting`.
//
// The turn goes to the default agent (the one every conversation uses, so its database and caches are
// the ones warmed), but:
// - its model is the runtime's own loopback no-model endpoint (`x-openclaw-model: warmup/no-model`),
//   never the configured model: warming costs nothing and reaches nothing outside the instance;
// - its session is OpenClaw's disposable probe shape, `agent:main:explicit:model-run-<uuid>`, a new one
//   every time, never a chat-page (`chat-…`) or channel session: nothing of it is in any conversation's
//   history, and OpenClaw's own session maintenance prunes such probe sessions.
import { randomUUID } from 'node:crypto';
import { NO_MODEL_ID } from './no-model.ts';
import { WARMUP_PROVIDER_ID } from './openclaw-config.ts';

/** The session key of one warm-up turn (OpenClaw's gateway model-run probe shape). */
export function warmupSessionKey(): string {
  return `agent:main:explicit:model-run-${randomUUID()}`;
}

/** Runs one warm-up turn; resolves with its duration in ms, rejects when the gateway does not answer 200. */
export async function runWarmupTurn(
  gatewayUrl: string,
  gatewayToken: string,
  { sessionKey = warmupSessionKey(), timeoutMs = 180_000 }: { sessionKey?: string; timeoutMs?: number } = {},
): Promise<number> {
  const started = Date.now();
  const res = await fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${gatewayToken}`,
      'content-type': 'application/json',
      'x-openclaw-model': `${WARMUP_PROVIDER_ID}/${NO_MODEL_ID}`,
      'x-openclaw-session-key': sessionKey,
    },
    body: JSON.stringify({ model: 'openclaw', messages: [{ role: 'user', content: 'warm-up' }] }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`warm-up turn answered ${res.status}: ${body.slice(0, 200)}`);
  return Date.now() - started;
}

/**
 * The session of the keep-warm turns (GatewaySupervisor `keepWarm`): one probe session, not a new one per turn (a
 * new session costs a turn ~1.5 s of CPU, a turn in a known one ~0.3 s), replaced every hour so its transcript
 * stays short; OpenClaw prunes probe sessions a day old.
 */
export class KeepWarmSession {
  private key = warmupSessionKey();
  private since: number;
  constructor(
    private readonly rotateMs = 3_600_000,
    private readonly clock = Date.now,
  ) {
    this.since = clock();
  }
  current(): string {
    if (this.clock() - this.since >= this.rotateMs) {
      this.key = warmupSessionKey();
      this.since = this.clock();
    }
    return this.key;
  }
}
