/**
 * The local compute provider: one runtime process per instance on this machine, each with its own port,
 * token and state directory under `<dataDir>/instances/<id>/`. Processes are detached (their own process
 * group) so they outlive worker restarts; destroy stops the whole group and removes the state.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ComputeHandle, ComputeProvider, ComputeSpec } from './types';

export interface LocalProviderOptions {
  /** Root for per-instance directories. */
  instancesDir: string;
  /** Command that starts one runtime; it gets PORT, STATE_DIR and the spec's env. */
  command: string[];
  cwd?: string;
}

interface Launch {
  port: number;
  pid: number | null;
}

const isAlive = (pid: number | null): pid is number => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function freePort(preferred?: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | null>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(null));
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : null));
      });
    });
  if (preferred) {
    const port = await tryPort(preferred);
    if (port) return port;
  }
  const port = await tryPort(0);
  if (!port) throw new Error('no free port');
  return port;
}

export class LocalComputeProvider implements ComputeProvider {
  readonly name = 'local';
  constructor(private readonly opts: LocalProviderOptions) {}

  private dir(instanceId: string) {
    if (!/^[A-Za-z0-9-]+$/.test(instanceId)) throw new Error(`bad instance id ${instanceId}`);
    return path.resolve(this.opts.instancesDir, instanceId);
  }

  private readLaunch(instanceId: string): Launch | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dir(instanceId), 'launch.json'), 'utf8')) as Launch;
    } catch {
      return null;
    }
  }

  private handle(instanceId: string, port: number): ComputeHandle {
    return { ref: instanceId, url: `http://127.0.0.1:${port}` };
  }

  async create(spec: ComputeSpec): Promise<ComputeHandle> {
    const launch = this.readLaunch(spec.instanceId);
    if (launch && isAlive(launch.pid)) return this.handle(spec.instanceId, launch.port);
    return this.launch(spec, launch?.port);
  }

  async restart(spec: ComputeSpec): Promise<ComputeHandle> {
    const launch = this.readLaunch(spec.instanceId);
    if (launch) await this.stop(launch.pid);
    return this.launch(spec, launch?.port);
  }

  private async launch(spec: ComputeSpec, preferredPort?: number): Promise<ComputeHandle> {
    const dir = this.dir(spec.instanceId);
    const stateDir = path.join(dir, 'state');
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const port = await freePort(preferredPort);
    const log = fs.openSync(path.join(dir, 'runtime.log'), 'a', 0o600);
    const [cmd, ...args] = this.opts.command;
    if (!cmd) throw new Error('local compute: empty runtime command');
    const child: ChildProcess = spawn(cmd, args, {
      cwd: this.opts.cwd,
      detached: true,
      stdio: ['ignore', log, log],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...spec.env,
        PORT: String(port),
        STATE_DIR: stateDir,
      },
    });
    fs.closeSync(log);
    child.unref();
    const record: Launch = { port, pid: child.pid ?? null };
    fs.writeFileSync(path.join(dir, 'launch.json'), JSON.stringify(record), { mode: 0o600 });
    return this.handle(spec.instanceId, port);
  }

  /** Stops the runtime's whole process group: SIGTERM (the runtime stops its gateway tree), SIGKILL after 10 s. */
  private async stop(pid: number | null) {
    if (!isAlive(pid)) return;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal);
      } catch {
        try {
          process.kill(pid, signal);
        } catch {}
      }
    };
    signalGroup('SIGTERM');
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    signalGroup('SIGKILL');
  }

  async destroy(instanceId: string): Promise<void> {
    const launch = this.readLaunch(instanceId);
    if (launch) await this.stop(launch.pid);
    fs.rmSync(this.dir(instanceId), { recursive: true, force: true });
  }

  async isRunning(instanceId: string): Promise<boolean | null> {
    // No launch record here (another machine's worker, say): cannot tell, so the health checks decide.
    const launch = this.readLaunch(instanceId);
    return launch ? isAlive(launch.pid) : null;
  }

  async list(_poolName?: string): Promise<string[]> {
    try {
      return fs.readdirSync(this.opts.instancesDir).filter((name) => /^[A-Za-z0-9-]+$/.test(name));
    } catch {
      return [];
    }
  }

  /** Stops every runtime this provider started (used by `npm start` on Ctrl-C); state stays for the next start. */
  async stopAll(): Promise<void> {
    const ids = await this.list();
    await Promise.all(ids.map((id) => this.stop(this.readLaunch(id)?.pid ?? null)));
  }
}
