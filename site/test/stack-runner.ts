// Runs the real stack (API, worker, Temporal dev server, Postgres, runtime stand-in) via the root
// package's test/stack.ts, in its own process with the root's tsx.
//   stack-runner.ts dev  → a pool on XMTP "dev": invite links, and joining by a pasted invite; its instances
//                          get their own OpenRouter key from the OpenRouter stand-in (the console's usage)
//   stack-runner.ts off  → a pool without XMTP: the runtime answers with browser chat links
// The in-process runtime stand-in reads XMTP_ENV from the environment when it loads, hence one
// process per mode. Prints one `STACK {json}` line, then stops on SIGTERM/SIGINT or when stdin closes.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Stack {
  apiUrl: string;
  apiKey: string;
  stop(): Promise<void>;
}
type StartStack = (o?: {
  xmtpEnv?: string;
  targetIdle?: number;
  resourcesFor?: (db: unknown) => { enabled: Record<string, unknown>; disabled: [] };
}) => Promise<Stack>;
interface OpenRouterStandin {
  url: string;
  baseUrl: string;
  managementKey: string;
  close(): Promise<void>;
}

const mode = process.argv[2] === 'off' ? 'off' : 'dev';
process.env.XMTP_ENV = mode;

const root = resolve(import.meta.dirname, '../..');
const file = resolve(root, 'test/stack.ts');
if (!existsSync(file)) {
  console.error(`stack-runner: ${file} does not exist yet (the core provides it).`);
  process.exit(2);
}
const { startStack } = (await import(pathToFileURL(file).href)) as { startStack: StartStack };
const load = (rel: string) => import(pathToFileURL(resolve(root, rel)).href);
let openrouter: OpenRouterStandin | null = null;
let llmKey: unknown;
if (mode === 'dev') {
  const { startOpenRouterStandin } = (await load('test/standins/openrouter-standin.ts')) as {
    startOpenRouterStandin(o?: { totalCredits?: number }): Promise<OpenRouterStandin>;
  };
  const { OpenRouterKeys } = (await load('activities/providers/openrouter.ts')) as {
    OpenRouterKeys: new (o: Record<string, unknown>) => unknown;
  };
  openrouter = await startOpenRouterStandin({ totalCredits: 100 });
  llmKey = new OpenRouterKeys({
    managementKey: openrouter.managementKey,
    monthlyLimitUsd: 5,
    baseUrl: openrouter.baseUrl,
  });
}
const stack = await startStack({
  xmtpEnv: mode,
  targetIdle: 2,
  ...(llmKey ? { resourcesFor: () => ({ enabled: { llmKey }, disabled: [] as [] }) } : {}),
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  try {
    await stack.stop();
    await openrouter?.close();
  } catch (err) {
    console.error('stack-runner: stop failed:', (err as Error).message);
  } finally {
    process.exit(0);
  }
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();

let joinUrl = '';
if (mode === 'dev') {
  // A correctly signed invite to someone's (made-up) dev conversation, as Convos would produce it.
  const invite = (await import(pathToFileURL(resolve(root, 'runtime/src/invite/index.ts')).href)) as {
    createInvite(o: Record<string, unknown>): { url: string };
    generateInviteTag(): string;
  };
  joinUrl = invite.createInvite({
    conversationId: randomUUID(),
    creatorInboxId: randomBytes(32).toString('hex'),
    walletPrivateKey: randomBytes(32),
    tag: invite.generateInviteTag(),
    env: 'dev',
    name: 'Site test conversation',
  }).url;
}
process.stdout.write(
  `STACK ${JSON.stringify({ apiUrl: stack.apiUrl, apiKey: stack.apiKey, joinUrl, openrouterUrl: openrouter?.url ?? '' })}\n`,
);
