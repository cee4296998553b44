/**
 * A pool run the way production runs it: `npm run worker` and `npm run api` as separate OS processes, on the
 * run's dev server and Postgres, configured from the environment alone. Each process is spawned in its own
 * process group (signalled the way a container platform signals its main process: the signal goes to `npm`,
 * which hands it on); its output is kept for assertions and for the message of a failed wait.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { inject } from 'vitest';
import { LocalComputeProvider } from '../../activities/compute/local';
import { projectRoot } from '../../scripts/temporal-dev';
import { stopPool } from './stop-pool';

export interface NpmProcess {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Its exit code (null: ended by a signal). */
  exited: Promise<number | null>;
}

export interface SplitPool {
  poolName: string;
  dataDir: string;
  apiKey: string;
  secretsKey: string;
  /** What every process of the pool gets; a test adds its ports and settings per process. */
  env: Record<string, string>;
  run(script: 'worker' | 'api', env?: Record<string, string>): NpmProcess;
  /** Signals the process's group and waits until it has exited. */
  kill(proc: NpmProcess, signal: NodeJS.Signals): Promise<void>;
  /** Polls `check` (a throw counts as not yet) until it holds; the processes' last output is in the error. */
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs?: number): Promise<void>;
  /** The last `chars` of what every process printed, process by process. */
  tail(chars?: number): string;
  /** Stops every process, the local runtimes they started (they outlive a worker by design) and the pool. */
  stop(): Promise<void>;
}

export const outputOf = (proc: NpmProcess) => proc.stdout.join('') + proc.stderr.join('');

export function splitPool(prefix: string, env: Record<string, string> = {}): SplitPool {
  const poolName = `${prefix}-${randomUUID().slice(0, 8)}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `convos-${prefix}-`));
  const apiKey = randomBytes(24).toString('base64url');
  const secretsKey = randomBytes(32).toString('base64');
  const procs: NpmProcess[] = [];

  const pool: SplitPool = {
    poolName,
    dataDir,
    apiKey,
    secretsKey,
    env: {
      POOL_ENVIRONMENT: 'staging',
      DATABASE_URL: inject('databaseUrl'),
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: poolName,
      POOL_NAME: poolName,
      POOL_API_KEY: apiKey,
      SECRETS_KEY: secretsKey,
      COMPUTE_PROVIDER: 'local',
      LOCAL_RUNTIME: 'standin',
      XMTP_ENV: 'off',
      DATA_DIR: dataDir,
      API_HOST: '127.0.0.1',
      INSTANCE_HEALTH_INTERVAL_MS: '2000',
      LOG_LEVEL: 'warn',
      ...env,
    },
    run(script, extra = {}) {
      const child = spawn('npm', ['run', '-s', script], {
        cwd: projectRoot,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...pool.env, ...extra },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const proc: NpmProcess = {
        child,
        stdout: [],
        stderr: [],
        exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
      };
      child.stdout?.on('data', (d: Buffer) => proc.stdout.push(d.toString()));
      child.stderr?.on('data', (d: Buffer) => proc.stderr.push(d.toString()));
      procs.push(proc);
      return proc;
    },
    async kill(proc, signal) {
      const { child } = proc;
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {}
      await proc.exited;
    },
    async waitFor(what, check, timeoutMs, everyMs = 250) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        if (await check().catch(() => false)) return;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${pool.tail()}`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    },
    tail(chars = 2500) {
      return procs.map((p) => outputOf(p).slice(-chars)).join('\n---\n');
    },
    async stop() {
      await Promise.all(procs.map((p) => pool.kill(p, 'SIGTERM')));
      await new LocalComputeProvider({
        instancesDir: path.join(dataDir, 'instances'),
        command: ['true'],
      }).stopAll();
      const connection = await Connection.connect({ address: inject('temporalAddress') });
      await stopPool(new Client({ connection }), poolName);
      await connection.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return pool;
}
