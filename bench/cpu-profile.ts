/**
 * `BENCH_CPU_PROFILE=<dir>`: a V8 CPU profile of this process (API, worker, stand-in, load generator) for a
 * phase of the claim benchmark, written as `<dir>/<name>.cpuprofile` (open it in Chrome DevTools, or summarize
 * it with `npx tsx bench/cpu-summary.ts <file>`). Off by default: profiling costs CPU itself.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';

const dir = process.env.BENCH_CPU_PROFILE;
let session: Session | null = null;

export async function profileStart(): Promise<void> {
  if (!dir) return;
  session ??= new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
}

export async function profileStop(name: string): Promise<void> {
  if (!dir || !session) return;
  const { profile } = await session.post('Profiler.stop');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
  session.disconnect();
}
