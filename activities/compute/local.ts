/**
 * The local compute provider: one runtime process per instance on this machine, each with its own port,
 * token and state directory under `<dataDir>/instances/<id>/`. Processes are detached (their own process
 * group) so they outlive worker restarts; destroy stops the whole group and removes the state.
 *
 * A pid alone does not say which process it is: after a machine restart (or a pid wrap-around) the pid in
 * `launch.json` can belong to an unrelated process, whose whole process group destroy/restart/stopAll would
 * then kill. So the launch record also holds the process's identity at launch (`processIdentity`), and the
 * provider signals a pid, adopts it or reports it alive only while that identity still matches.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sourceVersion } from './source-version';
import type { ComputeHandle, ComputeProvider, ComputeSpec } from './types';

export interface LocalProviderOptions {
  /** Root for per-instance directories. */
  instancesDir: string;
  /** Command that starts one runtime; it gets PORT, STATE_DIR and the spec's env. */
  command: string[];
  cwd?: string;
  /** The files the runtime runs from: their hash is the runtime version (none: the version is unknown). */
  sources?: string[];
}

/**
 * Who a process is, beyond its pid. Linux: its start time (field 22 of /proc/<pid>/stat, clock ticks since
 * boot) and the boot id (/proc/sys/kernel/random/boot_id) — together unique to one process for the life of
 * the machine, and a reboot changes the boot id. Other platforms (macOS, BSD): the start time `ps` reports
 * (to the second, read in UTC), which a reused pid practically never repeats; where `ps` is missing
 * (Windows) there is no identity at all, and a process without one is never signalled or adopted (the safe
 * failure: at worst a runtime is left running, never an unrelated process killed).
 */
export type ProcessIdentity =
  | { kind: 'linux'; bootId: string; startTicks: string }
  | { kind: 'ps'; started: string };

interface Launch {
  port: number;
  pid: number | null;
  /**
   * The process's identity at launch. Absent: a record written before identities were recorded (see
   * `legacyOwner`); null: it could not be read at launch (the process is then never signalled).
   */
  identity?: ProcessIdentity | null;
  /** The runtime version it was launched with (the sources' hash then). */
  version?: string;
}

let bootId: string | null | undefined;
function linuxBootId(): string | null {
  if (bootId === undefined) {
    try {
      bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      bootId = null;
    }
  }
  return bootId;
}

/** The identity of the live process `pid`, or null when there is none (gone, a zombie, or unknowable). */
export function processIdentity(pid: number): ProcessIdentity | null {
  if (!Number.isInteger(pid) || pid <= 1) return null;
  if (process.platform === 'linux') {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return null;
    }
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split after the last ')'.
    // The rest starts at field 3 (state); field 22 (starttime) is the 20th of it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const startTicks = fields[19];
    const boot = linuxBootId();
    if (!state || state === 'Z' || state === 'X' || !startTicks || !/^\d+$/.test(startTicks) || !boot)
      return null;
    return { kind: 'linux', bootId: boot, startTicks };
  }
  try {
    const out = execFileSync('ps', ['-o', 'stat=', '-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { PATH: process.env.PATH ?? '/bin:/usr/bin', TZ: 'UTC', LC_ALL: 'C' },
      timeout: 5000,
    }).trim();
    const [state, ...started] = out.split(/\s+/);
    if (!state || state.startsWith('Z') || started.length === 0) return null;
    return { kind: 'ps', started: started.join(' ') };
  } catch {
    return null;
  }
}

function sameIdentity(a: ProcessIdentity, b: ProcessIdentity): boolean {
  if (a.kind === 'linux' && b.kind === 'linux') return a.bootId === b.bootId && a.startTicks === b.startTicks;
  if (a.kind === 'ps' && b.kind === 'ps') return a.started === b.started;
  return false;
}

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

  /** The hash of the runtime's sources now (a new process starts from the files as they are). */
  async runtimeVersion(): Promise<string | null> {
    return this.opts.sources?.length ? sourceVersion(this.opts.sources) : null;
  }

  /** The version a process launched now runs (hashed at most once a second: a fill launches many at once). */
  private versionNow(): string | undefined {
    if (!this.opts.sources?.length) return undefined;
    if (!this.versionCache || Date.now() - this.versionCache.at > 1000)
      this.versionCache = { at: Date.now(), version: sourceVersion(this.opts.sources) };
    return this.versionCache.version;
  }
  private versionCache: { at: number; version: string } | null = null;

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

  /** Whether the record's pid is still the process this provider launched for the instance. */
  private owns(instanceId: string, launch: Launch | null): launch is Launch & { pid: number } {
    if (!launch || typeof launch.pid !== 'number' || !Number.isInteger(launch.pid) || launch.pid <= 1)
      return false;
    if (launch.identity === undefined) return this.legacyOwner(instanceId, launch.pid);
    if (!launch.identity) return false;
    const now = processIdentity(launch.pid);
    return now !== null && sameIdentity(now, launch.identity);
  }

  /**
   * A record from before identities were recorded (a runtime launched by an older version, still running):
   * on Linux the process is ours only if its environment names this instance's state directory; elsewhere
   * it cannot be told, so it is not ours (never signalled; a new runtime is launched beside it).
   */
  private legacyOwner(instanceId: string, pid: number): boolean {
    if (process.platform !== 'linux' || !processIdentity(pid)) return false;
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      return environ.includes(`STATE_DIR=${path.join(this.dir(instanceId), 'state')}`);
    } catch {
      return false;
    }
  }

  private handle(instanceId: string, port: number, version?: string): ComputeHandle {
    return {
      ref: instanceId,
      url: `http://127.0.0.1:${port}`,
      ...(version ? { runtimeVersion: version } : {}),
    };
  }

  async create(spec: ComputeSpec): Promise<ComputeHandle> {
    const launch = this.readLaunch(spec.instanceId);
    if (this.owns(spec.instanceId, launch)) return this.handle(spec.instanceId, launch.port, launch.version);
    return this.launch(spec, launch?.port);
  }

  async restart(spec: ComputeSpec): Promise<ComputeHandle> {
    const launch = this.readLaunch(spec.instanceId);
    await this.stop(spec.instanceId, launch);
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
    const version = this.versionNow();
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
    // A spawn failure is reported here, not thrown: the record then has no pid and counts as not running.
    child.once('error', () => {});
    child.unref();
    // Read at once: the pid cannot be reused before we read it (the child is ours until it is reaped).
    const pid = child.pid ?? null;
    const record: Launch = { port, pid, identity: pid ? processIdentity(pid) : null, version };
    fs.writeFileSync(path.join(dir, 'launch.json'), JSON.stringify(record), { mode: 0o600 });
    return this.handle(spec.instanceId, port, version);
  }

  /**
   * Stops the runtime's whole process group: SIGTERM (the runtime stops its gateway tree), SIGKILL after
   * 10 s. Only a process whose identity matches the launch record is signalled: anything else under that
   * pid (after a reboot, say) is left alone.
   */
  private async stop(instanceId: string, launch: Launch | null) {
    if (!this.owns(instanceId, launch)) return;
    const pid = launch.pid;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        // The group keeps its id while any member lives, so the id cannot be reused meanwhile; the final
        // SIGKILL also reaches gateway processes that outlived the runtime.
        process.kill(-pid, signal);
      } catch {
        // No such group (the runtime left it?): the runtime alone, and only if it is still the same process.
        if (this.owns(instanceId, launch)) {
          try {
            process.kill(pid, signal);
          } catch {}
        }
      }
    };
    signalGroup('SIGTERM');
    for (let i = 0; i < 100 && this.owns(instanceId, launch); i++)
      await new Promise((r) => setTimeout(r, 100));
    signalGroup('SIGKILL');
  }

  async destroy(instanceId: string): Promise<void> {
    await this.stop(instanceId, this.readLaunch(instanceId));
    fs.rmSync(this.dir(instanceId), { recursive: true, force: true });
  }

  async isRunning(instanceId: string): Promise<boolean | null> {
    // No launch record here (another machine's worker, say): cannot tell, so the health checks decide.
    const launch = this.readLaunch(instanceId);
    return launch ? this.owns(instanceId, launch) : null;
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
    await Promise.all(ids.map((id) => this.stop(id, this.readLaunch(id))));
  }
}
