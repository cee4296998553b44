// The first reply after a claim, on real runtimes (real OpenClaw, XMTP_ENV=off) with an instant model
// stand-in: for each of N claims a fresh instance boots (fresh STATE_DIR), waits idle as a pool's instance does,
// is provisioned, and gets three chat messages. Prints one JSON line per claim and a summary line
// (`{"summary": …}`) last; `npm run bench -- firstReply` runs it and reports the summary. The CPU the instance
// burns while it waits idle is its keep-warm cost.
//
// How long each waits: at least a minute (longer than OpenClaw keeps what a turn opened, so the warm-up must
// have been kept, not just done once), and spread evenly over one minute: claim i of N waits 60 s + i·60/N s.
// The gateway sweeps its worker placements every 60 s (OpenClaw's WORKER_PLACEMENT_RECONCILE_INTERVAL_MS), and
// the sweep retires its session-history worker thread, which the next turn starts again (~1.5 s); a pool's
// claim lands at any phase of that sweep, so one fixed wait would measure one phase only (60 s sits right on
// the sweep: every claim cold; 70 s right after a keep-warm turn: every claim warm).
//   Usage: [FIRST_REPLY_IDLE_MS=<ms, the same for every claim>] [GATEWAY_KEEP_WARM_SECONDS=<s>]
//          node --import tsx scripts/first-reply.ts [claims=10]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startModelServer } from '../test/support/model-server.ts';
import { freePort, startRuntimeProcess, waitForHealth } from '../test/support/runtime-process.ts';

const TOKEN = 'first-reply-instance-token-0123456789';
const claims = Number(process.argv[2] ?? '10');
const fixedIdleMs = process.env.FIRST_REPLY_IDLE_MS ? Number(process.env.FIRST_REPLY_IDLE_MS) : null;
const SWEEP_MS = 60_000;
/** How long claim `i` waits idle (see the top). */
const idleMsOf = (i: number) => fixedIdleMs ?? SWEEP_MS + Math.round((i * SWEEP_MS) / claims);
const MESSAGES = 3;

const load1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

function rssKb(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** CPU ms the processes have used, with their children that exited (clock ticks are 10 ms here). */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the command's closing parenthesis: utime, stime, cutime, cstime are the 12th–15th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      for (const i of [11, 12, 13, 14]) ticks += Number(fields[i] ?? 0);
    } catch {
      // gone: its time is in its parent's children's time once reaped
    }
  }
  return ticks * 10;
}

function p50(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(s.length / 2) - 1)] ?? Number.NaN;
}

export interface ClaimSample {
  bootMs: number;
  provisionMs: number;
  firstReplyMs: number;
  laterReplyMs: number[];
  rssMb: number;
  processes: number;
  /** CPU ms per minute the instance used while it waited idle (the keep-warm turns' cost). */
  idleCpuMsPerMin: number;
  idleMs: number;
  load: number;
}

async function oneClaim(i: number, modelUrl: string): Promise<ClaimSample> {
  const dir = mkdtempSync(path.join(tmpdir(), `first-reply-${i}-`));
  const started = Date.now();
  const rt = startRuntimeProcess({
    INSTANCE_ID: `fr${i}`,
    INSTANCE_TOKEN: TOKEN,
    PORT: String(await freePort()),
    STATE_DIR: dir,
    XMTP_ENV: 'off',
    MODEL_BASE_URL: modelUrl,
    MODEL: 'stand-in',
    ...(process.env.GATEWAY_KEEP_WARM_SECONDS
      ? { GATEWAY_KEEP_WARM_SECONDS: process.env.GATEWAY_KEEP_WARM_SECONDS }
      : {}),
  });
  try {
    await waitForHealth(rt.url, TOKEN, (b) => b.ready === true, 600_000);
    const bootMs = Date.now() - started;
    // A pool's instance waits idle before its claim.
    const idleMs = idleMsOf(i);
    const idleTree = () => [rt.child.pid as number, ...rt.tree()];
    const idleCpuBefore = cpuMs(idleTree());
    if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs));
    const idleCpuMsPerMin =
      idleMs > 0 ? Math.round(((cpuMs(idleTree()) - idleCpuBefore) * 60_000) / idleMs) : 0;
    let t = Date.now();
    const res = await fetch(`${rt.url}/pool/provision`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requestId: `claim-${i}`, agentName: `Agent ${i}`, instructions: 'Be brief.' }),
    });
    if (!res.ok) throw new Error(`provision answered ${res.status}`);
    const { chatUrl } = (await res.json()) as { chatUrl: string };
    const provisionMs = Date.now() - t;
    const replies: number[] = [];
    for (let m = 0; m < MESSAGES; m++) {
      t = Date.now();
      const r = await fetch(`${chatUrl}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: `hello ${m}`, session: `first-reply-${i}` }),
      });
      if (!r.ok) throw new Error(`chat message answered ${r.status}`);
      await r.json();
      replies.push(Date.now() - t);
    }
    const tree = [rt.child.pid as number, ...rt.tree()];
    return {
      bootMs,
      provisionMs,
      firstReplyMs: replies[0] as number,
      laterReplyMs: replies.slice(1),
      rssMb: Math.round(tree.reduce((s, p) => s + rssKb(p), 0) / 1024),
      processes: tree.length,
      idleCpuMsPerMin,
      idleMs,
      load: load1(),
    };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- runtime output ---\n${rt.output().slice(-4000)}`);
  } finally {
    await rt.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const model = await startModelServer(() => 'ok');
try {
  const samples: ClaimSample[] = [];
  for (let i = 0; i < claims; i++) {
    const s = await oneClaim(i, model.url);
    samples.push(s);
    console.log(JSON.stringify({ claim: i, ...s }));
  }
  const summary = {
    claims,
    bootMsP50: p50(samples.map((s) => s.bootMs)),
    bootMsMax: Math.max(...samples.map((s) => s.bootMs)),
    provisionMsP50: p50(samples.map((s) => s.provisionMs)),
    firstReplyMsP50: p50(samples.map((s) => s.firstReplyMs)),
    firstReplyMsMax: Math.max(...samples.map((s) => s.firstReplyMs)),
    laterReplyMsP50: p50(samples.flatMap((s) => s.laterReplyMs)),
    rssMbP50: p50(samples.map((s) => s.rssMb)),
    processesP50: p50(samples.map((s) => s.processes)),
    idleMs: Math.min(...samples.map((s) => s.idleMs)),
    idleMsMax: Math.max(...samples.map((s) => s.idleMs)),
    /** Claims whose first reply took over a second (landed between a sweep and the next keep-warm turn). */
    coldFirstReplies: samples.filter((s) => s.firstReplyMs > 1000).length,
    idleCpuMsPerMinP50: p50(samples.map((s) => s.idleCpuMsPerMin)),
  };
  console.log(JSON.stringify({ summary }));
} finally {
  await model.close();
}
// Keep-alive sockets and the runtimes' closed pipes must not keep the process (and the bench) waiting.
process.exit(0);
