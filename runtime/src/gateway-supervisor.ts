// Runs the OpenClaw gateway as a child process and keeps it running: probes /readyz, restarts it with
// exponential backoff when it exits, and reports "down" after repeated fast crashes (while still
// retrying slowly, so a transient cause heals by itself). Stopping kills the whole process tree.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { descendants, isAlive, processesWithEnv, signalTree } from './process-tree.ts';

export type GatewayState = 'starting' | 'ready' | 'down';

export interface GatewaySupervisorOptions {
  /** argv[0] (a Node ≥ 24.16 binary) and the rest of the command. */
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  port: number;
  logDir: string;
  /**
   * An environment variable (name, value) unique to this instance's gateway processes
   * (OPENCLAW_STATE_DIR): used to find and kill strays, including ones from a previous run.
   */
  marker: { name: string; value: string };
  /** Strings that must never reach logs (tokens, keys). */
  redact: string[];
  /** A crash within this many ms of starting counts as a fast crash. */
  fastCrashMs?: number;
  /** Consecutive fast crashes before the gateway is reported down. */
  maxFastCrashes?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  probeIntervalMs?: number;
  /**
   * Runs once after every gateway start, once /readyz answers and before the gateway counts as ready
   * (gateway-warmup.ts: a throwaway turn, so the first real message does not pay for lazy loading). A
   * failure is logged and the gateway becomes ready anyway: a cold first reply beats an unclaimable instance.
   */
  warmUp?: () => Promise<void>;
  /**
   * Keeps the warm-up from wearing off: OpenClaw lets go of what the warm-up started within about a minute
   * without a turn (worker threads after 30 s idle, its agent database after 60 s, and reopening that forks an
   * integrity check), so an instance claimed after 60–90 s idle answered its first message in 4–6 s
   * (docs/runtime.md, "Keeping warm while idle"). While `keepWarm.while()` holds (the instance is not claimed yet), `keepWarm.turn` runs
   * every `everyMs` on a ready gateway. 0 or absent: never.
   */
  keepWarm?: { everyMs: number; while: () => boolean; turn: () => Promise<void> };
  log?: (line: string) => void;
}

export class GatewaySupervisor {
  private child: ChildProcess | null = null;
  private childTree: number[] = [];
  private stopping = false;
  private fastCrashes = 0;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private logStream: WriteStream | null = null;
  private ready = false;
  private failedProbes = 0;
  private down = false;
  /** The child whose warm-up is running or done (warm-up runs once per gateway process). */
  private warmedChild: ChildProcess | null = null;
  private keepWarmTimer: NodeJS.Timeout | null = null;
  /** Keep-warm turns run (for tests and logs). */
  keepWarmTurns = 0;
  /** Number of times the gateway process was started (for tests and logs). */
  starts = 0;
  readonly baseUrl: string;

  constructor(private readonly opts: GatewaySupervisorOptions) {
    this.baseUrl = `http://127.0.0.1:${opts.port}`;
  }

  get state(): GatewayState {
    if (this.ready) return 'ready';
    return this.down ? 'down' : 'starting';
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** SIGKILLs every process carrying the instance marker and waits (bounded) until they are gone. */
  private async killStrays(reason: string): Promise<void> {
    const strays = processesWithEnv(this.opts.marker.name, this.opts.marker.value);
    if (strays.length === 0) return;
    this.log(`[runtime] killing ${strays.length} stray gateway process(es) (${reason})`);
    for (const pid of strays) signalTree(pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (strays.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }

  async start(): Promise<void> {
    // A gateway left behind by a runtime that died without stopping it would hold the state locks
    // and make every new gateway fail.
    await this.killStrays('left from a previous run');
    mkdirSync(this.opts.logDir, { recursive: true });
    this.logStream = createWriteStream(path.join(this.opts.logDir, 'gateway.log'), { flags: 'a' });
    this.spawnGateway();
    this.scheduleProbe(0);
  }

  private log(line: string): void {
    (this.opts.log ?? ((l: string) => process.stdout.write(`${l}\n`)))(line);
  }

  private redact(text: string): string {
    let out = text;
    for (const secret of this.opts.redact) if (secret) out = out.split(secret).join('[redacted]');
    return out;
  }

  private spawnGateway(): void {
    if (this.stopping) return;
    this.starts += 1;
    this.startedAt = Date.now();
    this.ready = false;
    this.failedProbes = 0;
    // detached: the gateway leads its own process group, so we can signal it and its helpers at once
    // and a Ctrl-C in our terminal does not hit it before we have a chance to stop it cleanly.
    const child = spawn(this.opts.command, this.opts.args, {
      cwd: this.opts.cwd,
      env: this.opts.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.log(`[runtime] gateway starting (pid ${child.pid}, attempt ${this.starts})`);
    const forward = (chunk: Buffer) => this.logStream?.write(this.redact(chunk.toString('utf8')));
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.on('error', (err) => this.log(`[runtime] gateway spawn error: ${err.message}`));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = null;
    this.ready = false;
    // Helpers of a crashed gateway would hold its port and SQLite locks: reap them before restarting.
    if (child.pid) signalTree(child.pid, 'SIGKILL', this.childTree);
    this.childTree = [];
    if (this.stopping) return;
    const lived = Date.now() - this.startedAt;
    const fast = lived < (this.opts.fastCrashMs ?? 60_000);
    this.fastCrashes = fast ? this.fastCrashes + 1 : 0;
    if (this.fastCrashes >= (this.opts.maxFastCrashes ?? 5)) this.down = true;
    const base = this.opts.backoffBaseMs ?? 1_000;
    const max = this.opts.backoffMaxMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** Math.max(0, this.fastCrashes - 1));
    this.log(
      `[runtime] gateway exited (code ${code ?? '-'}, signal ${signal ?? '-'}, after ${lived} ms); restart in ${delay} ms` +
        (this.down ? ' — reporting gateway down' : ''),
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      void this.killStrays('after a gateway exit').then(() => this.spawnGateway());
    }, delay);
  }

  private scheduleProbe(delayMs: number): void {
    if (this.stopping) return;
    this.probeTimer = setTimeout(() => void this.probe(), delayMs);
  }

  private async probe(): Promise<void> {
    let ok = false;
    if (this.child) {
      try {
        const res = await fetch(`${this.baseUrl}/readyz`, { signal: AbortSignal.timeout(3_000) });
        const body = (await res.json().catch(() => null)) as { ready?: unknown } | null;
        ok = res.ok && body?.ready === true;
      } catch {
        ok = false;
      }
    }
    if (this.stopping) return;
    if (ok && !this.ready && this.opts.warmUp && this.child && this.warmedChild !== this.child) {
      // Answering, not yet warm: stay `starting` until the warm-up turn is done, then probe again.
      const child = this.child;
      this.warmedChild = child;
      const started = Date.now();
      this.log(`[runtime] gateway answering (${started - this.startedAt} ms after start); warming up`);
      try {
        await this.opts.warmUp();
        this.log(`[runtime] gateway warm-up done in ${Date.now() - started} ms`);
      } catch (err) {
        this.log(
          `[runtime] gateway warm-up failed after ${Date.now() - started} ms: ${(err as Error).message}`,
        );
      }
      this.scheduleProbe(0);
      return;
    }
    if (ok && !this.ready) {
      this.log(`[runtime] gateway ready (${Date.now() - this.startedAt} ms after start)`);
      this.fastCrashes = 0;
      this.down = false;
      // Remember the helpers while they are alive: they may be re-parented once the gateway dies.
      if (this.child?.pid) this.childTree = descendants(this.child.pid);
      this.scheduleKeepWarm();
    }
    // A live gateway that misses one probe (a slow event loop on a busy machine) stays ready; three
    // misses in a row, or its exit (onExit), make it not ready.
    this.failedProbes = ok ? 0 : this.failedProbes + 1;
    if (ok) this.ready = true;
    else if (!this.child || this.failedProbes >= 3) this.ready = false;
    // While starting, often: the instance reports ready (and can be claimed) this much after the gateway is.
    this.scheduleProbe(this.ready ? (this.opts.probeIntervalMs ?? 5_000) : 200);
  }

  /** The next keep-warm turn, `keepWarm.everyMs` from now (one chain per supervisor, none while not ready). */
  private scheduleKeepWarm(): void {
    const keepWarm = this.opts.keepWarm;
    if (!keepWarm || keepWarm.everyMs <= 0 || this.keepWarmTimer || this.stopping) return;
    this.keepWarmTimer = setTimeout(async () => {
      if (this.ready && keepWarm.while()) {
        try {
          await keepWarm.turn();
          this.keepWarmTurns += 1;
        } catch (err) {
          this.log(`[runtime] keep-warm turn failed: ${(err as Error).message}`);
        }
      }
      this.keepWarmTimer = null;
      // Claimed: the conversation's own turns keep it warm from here; a restarted gateway schedules anew.
      if (this.ready && keepWarm.while()) this.scheduleKeepWarm();
    }, keepWarm.everyMs);
    this.keepWarmTimer.unref();
  }

  /** Stops the gateway and its helpers: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.probeTimer) clearTimeout(this.probeTimer);
    if (this.keepWarmTimer) clearTimeout(this.keepWarmTimer);
    const child = this.child;
    if (child?.pid) {
      const pid = child.pid;
      const tree = signalTree(pid, 'SIGTERM', this.childTree);
      const exited = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs));
      if ((await Promise.race([exited, timer])) === 'timeout') {
        this.log('[runtime] gateway did not stop in time; killing it');
      }
      signalTree(pid, 'SIGKILL', tree);
      // Wait until every known helper is gone (a 1 GB process takes a moment to die on a busy machine).
      const deadline = Date.now() + 10_000;
      while ([pid, ...tree].some(isAlive) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
    }
    // Helpers started during shutdown are not in any snapshot; the marker finds them.
    await this.killStrays('after stop');
    this.child = null;
    this.ready = false;
    await new Promise<void>((resolve) => (this.logStream ? this.logStream.end(() => resolve()) : resolve()));
  }
}
