// Runs the real stack (API, worker, Temporal dev server, Postgres, runtime stand-in) via the root
// package's test/stack.ts, in its own process with the root's tsx. Prints one `STACK {json}` line,
// then stops the stack on SIGTERM/SIGINT or when the parent closes stdin.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Stack {
  apiUrl: string;
  apiKey: string;
  stop(): Promise<void>;
}

const file = resolve(import.meta.dirname, '../../test/stack.ts');
if (!existsSync(file)) {
  console.error(`stack-runner: ${file} does not exist yet (the core provides it).`);
  process.exit(2);
}
const { startStack } = (await import(pathToFileURL(file).href)) as { startStack: (o?: object) => Promise<Stack> };
const stack = await startStack();
process.stdout.write(`STACK ${JSON.stringify({ apiUrl: stack.apiUrl, apiKey: stack.apiKey })}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  try {
    await stack.stop();
  } finally {
    process.exit(0);
  }
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
