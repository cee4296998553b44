// The first reply after a claim, on real runtimes (real OpenClaw, XMTP_ENV=off) with an instant model
// stand-in: for each of N claims a fresh instance boots (fresh STATE_DIR), is provisioned when its health
// is ready, and gets three chat messages. Prints one JSON line per claim and a summary line
// (`{"summary": …}`) last; `npm run bench -- firstReply` runs it and reports the summary.
//   Usage: [FIRST_REPLY_IDLE_MS=<ms idle before each claim>] node --import tsx scripts/first-reply.ts [claims=10]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startModelServer } from '../test/support/model-server.ts';
import { freePort, startRuntimeProcess, waitForHealth } from '../test/support/runtime-process.ts';

const TOKEN = 'first-reply-instance-token-0123456789';
const claims = Number(process.argv[2] ?? '10');
const idleMs = Number(process.env.FIRST_REPLY_IDLE_MS ?? '0');
const MESSAGES = 3;

const load1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

function rssKb(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
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
  });
  try {
    await waitForHealth(rt.url, TOKEN, (b) => b.ready === true, 600_000);
    const bootMs = Date.now() - started;
    // A pool's instance waits idle before its claim: FIRST_REPLY_IDLE_MS waits that long after ready (default 0:
    // claimed the moment it is ready, which is not how a pool claims).
    if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs));
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
  };
  console.log(JSON.stringify({ summary }));
} finally {
  await model.close();
}
// Keep-alive sockets and the runtimes' closed pipes must not keep the process (and the bench) waiting.
process.exit(0);
