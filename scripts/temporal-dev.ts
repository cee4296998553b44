/**
 * The local Temporal dev server: find (or build) the CLI, start `temporal server start-dev` from
 * temporal-dev.yaml, wait until it answers, and register the search attributes (the workflows' list,
 * config/temporal-namespace.ts, as `npm run temporal:setup` does on any other namespace).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { connectTemporal, localTemporal } from '../config/temporal';
import { registerSearchAttributes, SEARCH_ATTRIBUTES, typeName } from '../config/temporal-namespace';

const exec = promisify(execFile);
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface DevServerSettings {
  namespace: string;
  ip: string;
  port: number;
  uiPort: number;
  dbFilename: string | null;
  logLevel: string;
  dynamicConfig: Record<string, string | number | boolean>;
  headless?: boolean;
  /**
   * The codec endpoint the Web UI decodes payloads through (`--ui-codec-endpoint`), when payloads are
   * encrypted (PAYLOAD_ENCRYPTION_KEY); `npm start` points it at its API's `/api/codec`.
   */
  uiCodecEndpoint?: string;
  /** Serve Prometheus metrics (among them `action`, the counter Temporal Cloud bills by) on this port. */
  metricsPort?: number;
}

export function readDevServerSettings(file = path.join(projectRoot, 'temporal-dev.yaml')): DevServerSettings {
  return YAML.parse(fs.readFileSync(file, 'utf8')) as DevServerSettings;
}

const CLI_VERSION = 'v1.5.1';
const cacheBin = path.join(os.homedir(), '.cache', 'convos-agents', 'bin');

/** `temporal` from PATH, else a cached build, else `go install` it into the cache (takes minutes, once). */
export async function findTemporalCli(log: (msg: string) => void = console.log): Promise<string> {
  if (process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'temporal');
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  const cached = path.join(cacheBin, 'temporal');
  if (fs.existsSync(cached)) return cached;
  const go = fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
  log(`building the Temporal CLI ${CLI_VERSION} with go install (once; a few minutes)…`);
  fs.mkdirSync(cacheBin, { recursive: true });
  await exec(go, ['install', `github.com/temporalio/cli/cmd/temporal@${CLI_VERSION}`], {
    env: { ...process.env, GOBIN: cacheBin, GOFLAGS: '-mod=mod' },
    maxBuffer: 64 * 1024 * 1024,
  });
  return cached;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  namespace: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startDevServer(
  settings: DevServerSettings,
  opts: { cli?: string; logFile?: string; log?: (msg: string) => void } = {},
): Promise<DevServer> {
  const cli = opts.cli ?? (await findTemporalCli(opts.log));
  const args = [
    'server',
    'start-dev',
    '--ip',
    settings.ip,
    '--port',
    String(settings.port),
    '--namespace',
    settings.namespace,
    '--log-level',
    settings.logLevel,
  ];
  if (settings.headless) args.push('--headless');
  else {
    args.push('--ui-port', String(settings.uiPort));
    if (settings.uiCodecEndpoint) args.push('--ui-codec-endpoint', settings.uiCodecEndpoint);
  }
  if (settings.metricsPort) args.push('--metrics-port', String(settings.metricsPort));
  if (settings.dbFilename) {
    const db = path.resolve(projectRoot, settings.dbFilename);
    fs.mkdirSync(path.dirname(db), { recursive: true });
    args.push('--db-filename', db);
  }
  for (const { name, type } of SEARCH_ATTRIBUTES)
    args.push('--search-attribute', `${name}=${typeName(type)}`);
  for (const [key, value] of Object.entries(settings.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(cli, args, { stdio: ['ignore', out, out] });
  const address = `${settings.ip}:${settings.port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  // Wait until the frontend answers, then register the search attributes (flags alone are ignored for an
  // existing database file).
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(
        `temporal dev server exited with ${child.exitCode} (see ${opts.logFile ?? 'its output'})`,
      );
    try {
      const connection = await connectTemporal(localTemporal(address), { connectTimeout: 1000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      break;
    } catch (err) {
      if (Date.now() - started > 60_000) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server did not answer within 60 s (${(err as Error).message})`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const connection = await connectTemporal(localTemporal(address));
  try {
    await registerSearchAttributes(connection.operatorService, settings.namespace);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    await connection.close();
  }
  return {
    address,
    uiUrl: settings.headless
      ? null
      : `http://${settings.ip === '0.0.0.0' ? 'localhost' : settings.ip}:${settings.uiPort}`,
    namespace: settings.namespace,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The billable actions the dev server counted so far (its `action` metric, summed over action types) for a
 * namespace, read from `--metrics-port`.
 */
export async function readActions(metricsPort: number, namespace = 'default'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^action(?:_total)?\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(line);
    if (m && new RegExp(`namespace="${namespace}"`).test(m[1]!)) total += Number(m[2]);
  }
  return total;
}
