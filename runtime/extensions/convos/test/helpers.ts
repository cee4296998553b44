import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentBridge, InboundGroupMessage, Log } from '../src/agent.js';
import type { IdentityRecord } from '../src/identity-store.js';
import { ConvosService } from '../src/service.js';
import type { FakeNetwork } from './fake-xmtp.js';

/** Stands in for OpenClaw's dispatch: records each turn and answers with a canned reply. */
export class RecordingAgent implements AgentBridge {
  readonly turns: InboundGroupMessage[] = [];
  constructor(
    private readonly name: string,
    private readonly shouldReply: (m: InboundGroupMessage) => boolean = () => true,
  ) {}

  async dispatch(m: InboundGroupMessage, reply: (text: string) => Promise<void>): Promise<void> {
    this.turns.push(m);
    if (this.shouldReply(m)) await reply(`${this.name} heard: ${m.text}`);
  }
}

export const testLog = (): Log & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
};

export async function tempStateDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `convos-${prefix}-`));
}

export function makeService(net: FakeNetwork, stateDir: string, agent: AgentBridge, log = testLog()) {
  return new ConvosService({
    stateDir,
    env: 'dev',
    factory: net.factory(),
    agent,
    log,
    backoff: { initialMs: 10, maxMs: 50 },
    joinWaitMs: 1500,
    joinPollMs: 10,
  });
}

export async function identities(stateDir: string): Promise<IdentityRecord[]> {
  const dir = join(stateDir, 'identities');
  const out: IdentityRecord[] = [];
  for (const f of await readdir(dir)) {
    if (f.endsWith('.json')) out.push(JSON.parse(await readFile(join(dir, f), 'utf8')) as IdentityRecord);
  }
  return out;
}

/** Polls until `check` is truthy (the runtime works in the background). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}
