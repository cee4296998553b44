// Measures the real runtime on this machine: boot to ready, provision latency, first/second message
// latency, memory (RSS and PSS of the whole process tree) and idle CPU, for N instances started at
// once with the stand-in model.   Usage: npm run measure -- [instances=1]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { startModelServer } from '../test/support/model-server.ts';
import {
  freePort,
  type RuntimeProcess,
  startRuntimeProcess,
  waitForHealth,
} from '../test/support/runtime-process.ts';

const TOKEN = 'measure-instance-token-0123456789';
const count = Number(process.argv[2] ?? '1');

function memKb(pid: number, file: 'status' | 'smaps_rollup', field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return 0;
  }
}

function treeOf(rt: RuntimeProcess): number[] {
  return [rt.child.pid as number, ...rt.tree()];
}

const mb = (kb: number) => Math.round(kb / 1024);

async function main() {
  const model = await startModelServer(() => 'ok');
  const dirs: string[] = [];
  const runtimes: RuntimeProcess[] = [];
  try {
    const started = Date.now();
    for (let i = 0; i < count; i++) {
      const dir = mkdtempSync(path.join(tmpdir(), `measure-${i}-`));
      dirs.push(dir);
      runtimes.push(
        startRuntimeProcess({
          INSTANCE_ID: `m${i}`,
          INSTANCE_TOKEN: TOKEN,
          PORT: String(await freePort()),
          STATE_DIR: dir,
          XMTP_ENV: 'off',
          MODEL_BASE_URL: model.url,
          MODEL: 'stand-in',
        }),
      );
    }
    const boots = await Promise.all(
      runtimes.map(async (rt) => {
        await waitForHealth(rt.url, TOKEN, (b) => b.ready === true, 600_000);
        return Date.now() - started;
      }),
    );
    console.log(`instances=${count} cores=${cpus().length} mem=${mb(totalmem() / 1024)}MB`);
    console.log(`boot to ready (ms): ${boots.join(', ')}`);

    const provisions: number[] = [];
    const firstMsg: number[] = [];
    const secondMsg: number[] = [];
    for (const [i, rt] of runtimes.entries()) {
      let t = Date.now();
      const res = await fetch(`${rt.url}/pool/provision`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requestId: `req-${i}`, agentName: `Agent ${i}`, instructions: 'Be brief.' }),
      });
      const { chatUrl } = (await res.json()) as { chatUrl: string };
      provisions.push(Date.now() - t);
      for (const target of [firstMsg, secondMsg]) {
        t = Date.now();
        const r = await fetch(`${chatUrl}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ message: 'hi', session: 'measure-session' }),
        });
        if (!r.ok) throw new Error(`chat failed: ${r.status}`);
        target.push(Date.now() - t);
      }
    }
    console.log(`provision (ms): ${provisions.join(', ')}`);
    console.log(`first message (ms): ${firstMsg.join(', ')}`);
    console.log(`second message (ms): ${secondMsg.join(', ')}`);

    // Let start-up work settle, then sample memory and idle CPU over 30 s.
    await new Promise((r) => setTimeout(r, 10_000));
    const ticks0 = runtimes.map((rt) => treeOf(rt).reduce((s, p) => s + cpuTicks(p), 0));
    await new Promise((r) => setTimeout(r, 30_000));
    for (const [i, rt] of runtimes.entries()) {
      const tree = treeOf(rt);
      const rss = tree.reduce((s, p) => s + memKb(p, 'status', 'VmRSS'), 0);
      const pss = tree.reduce((s, p) => s + memKb(p, 'smaps_rollup', 'Pss'), 0);
      const ticks = tree.reduce((s, p) => s + cpuTicks(p), 0) - (ticks0[i] ?? 0);
      console.log(
        `instance ${i}: processes=${tree.length} rss=${mb(rss)}MB pss=${mb(pss)}MB idle-cpu=${((ticks / 100 / 30) * 100).toFixed(1)}% of a core`,
      );
    }
  } finally {
    await Promise.all(runtimes.map((rt) => rt.stop().catch(() => undefined)));
    await model.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
