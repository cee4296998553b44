// Entrypoint of an instance (`npm start`, the local compute provider, the container image).
// Reads the environment contract, starts the runtime, and on SIGTERM/SIGINT stops the gateway's whole
// process tree before exiting, so no OpenClaw process outlives its instance.
import { EnvError, loadEnv, type RuntimeEnv } from './env.ts';
import { type RunningRuntime, startRuntime } from './runtime.ts';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

function nodeIsRecentEnough(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 24 || (major === 24 && minor >= 16);
}

async function main(): Promise<void> {
  let env: RuntimeEnv;
  try {
    env = loadEnv(process.env);
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`runtime: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (!nodeIsRecentEnough()) {
    process.stderr.write(
      `runtime: OpenClaw needs Node >= 24.16, this is ${process.version} (${process.execPath})\n`,
    );
    process.exit(2);
  }

  let runtime: RunningRuntime | null = null;
  let stopping = false;
  const shutdown = async (signal: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log(`[runtime] ${signal}: stopping`);
    try {
      await runtime?.stop();
    } finally {
      process.exit(code);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('uncaughtException', (err) => {
    log(`[runtime] uncaught: ${err.stack ?? err.message}`);
    void shutdown('uncaughtException', 1);
  });

  runtime = await startRuntime(env, log);
}

main().catch((err: unknown) => {
  process.stderr.write(`runtime: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
