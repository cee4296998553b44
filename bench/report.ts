/**
 * The results table: printed by `npm run bench` and written between markers in docs/benchmarks.md, so the
 * hand-written explanations around it survive every re-run.
 */
import fs from 'node:fs';
import type { FloorBench } from './floor';
import type { LatencySummary } from './lib';
import { type ClaimProfile, PHASES, type Phase } from './profile';

interface Stamp {
  measuredAt: string;
  /** How long this benchmark took, stack start and stop included. */
  runSeconds: number;
  /** 1-minute load average of the machine before, at most during, and after the benchmark. */
  load?: { before: number; max: number; after: number };
}

export interface BenchResults {
  machine?: { cpus: number; cpuModel: string; memoryGb: number; node: string };
  totalSeconds?: number;
  claim?: Stamp & ClaimBench;
  burst?: Stamp & BurstBench;
  fill?: Stamp & FillBench;
  memory?: Stamp & MemoryBench;
  actions?: Stamp & ActionsBench;
  firstReply?: Stamp & FirstReplyBench;
  scale?: Stamp & ScaleBench;
}

/** The pool at scale over two worker processes (issue 13.5). */
export interface ScaleBench {
  idle: number;
  fillSeconds: number;
  claimAlone: LatencySummary;
  claimConcurrent: LatencySummary;
  liveWorkflows: number;
  workers: number;
  workerRssMb: number[];
  workerPeakRssMb: number[];
  /** Each worker's own cached workflows (the sticky queues split them unevenly); absent in older results. */
  workerCachedWorkflows?: number[];
  /** Each worker's RSS per 1,000 of its own cached workflows, and both workers' together. */
  workerMbPer1000Cached?: number[];
  mbPer1000CachedAll?: number;
  killed: number;
  killedDetectedSeconds: number;
  killedReplacedSeconds: number;
}

/** runtime/scripts/first-reply.ts's summary: real runtimes, instant model stand-in, times in ms. */
export interface FirstReplyBench {
  claims: number;
  bootMsP50: number;
  bootMsMax: number;
  provisionMsP50: number;
  firstReplyMsP50: number;
  firstReplyMsMax: number;
  /** The second and third message of every claim. */
  laterReplyMsP50: number;
  /** VmRSS summed over the runtime's process tree after the three replies. */
  rssMbP50: number;
  processesP50: number;
  /** How long the instances waited idle (ready → claim): the shortest; absent in older results (0: at once). */
  idleMs?: number;
  /** The longest wait (runtime/scripts/first-reply.ts spreads them over OpenClaw's 60 s sweep). */
  idleMsMax?: number;
  /** Claims whose first reply took over a second. */
  coldFirstReplies?: number;
  /** CPU ms per minute the instance used while it waited (keep-warm turns included). */
  idleCpuMsPerMinP50?: number;
}

/** `60 s` or `60–114 s`: how long the first-reply bench's instances waited idle before their claim. */
function idleRange(f: FirstReplyBench): string {
  const lo = Math.round((f.idleMs ?? 0) / 1000);
  const hi = Math.round((f.idleMsMax ?? f.idleMs ?? 0) / 1000);
  return hi > lo ? `${lo}–${hi} s` : `${lo} s`;
}

export interface ActionsBench {
  instances: number;
  windowSeconds: number;
  healthIntervalMs: number;
  healthFailuresAllowed: number;
  /** The pool with no instance and no health sweeper. */
  baselinePerHour: number;
  /** The reconcile Schedule's interval whose runs are amortised into the per-instance figures. */
  reconcileIntervalMs: number;
  perIdleInstanceHour: number;
  perClaimedInstanceHour: number;
}

export interface ClaimBench {
  claimAlone: LatencySummary;
  claimConcurrent: LatencySummary;
  directAlone: LatencySummary;
  directConcurrent: LatencySummary;
  profileAlone: ClaimProfile;
  profileConcurrent: ClaimProfile;
  healthIntervalMs: number;
  /** The engine's floor on the same stack, in the same run (./floor.ts); absent in results from before it. */
  floor?: FloorBench;
  /** CPU the stack burned per second doing nothing, after the fill (in every phase's CPU). */
  idleCpuMsPerSecond?: number;
  /** CPU ms the whole stack (and load generator) burned per claim. */
  cpuMsPerClaim: { alone: number; concurrent: number };
  cpuMsPerDirectClaim: { alone: number; concurrent: number };
  /** The 20-concurrent CPU per claim split: this Node process, the Temporal dev server, Postgres. */
  cpuMsPerClaimByPart?: { node: number; temporal: number; postgres: number };
}

export interface BurstBench {
  idle: number;
  claims: number;
  maxWaitMs: number;
  ok: number;
  distinctInstances: number;
  unavailable: number;
  unavailableWithRetryAfter: number;
  otherStatuses: number[];
  otherErrors?: string[];
  statusCounts?: Record<string, number>;
  provisionedInStandin: number;
  boundWithoutAnswer?: number;
  doubleClaims: number;
  wallMs: number;
  okLatency: LatencySummary;
}

export interface FillBench {
  target: number;
  seconds: number;
  firstIdleSeconds: number;
  halfSeconds: number;
  cpuSeconds: number;
}

export interface MemoryBench {
  workflows: number;
  baselineMb: number;
  settledMb: number;
  peakMb: number;
  fillSeconds: number;
}

const yes = (ok: boolean) => (ok ? 'yes' : '**no**');
const ms = (x: number) => `${x} ms`;

export function renderTable(r: BenchResults): string {
  const rows: string[][] = [];
  if (r.actions) {
    const a = r.actions;
    const settings = `${a.instances} instances, health every ${a.healthIntervalMs / 1000} s, ${a.healthFailuresAllowed} misses`;
    rows.push([
      `billable actions per idle instance-hour (${settings})`,
      `${a.perIdleInstanceHour}`,
      '≤ 10',
      yes(a.perIdleInstanceHour <= 10),
    ]);
    rows.push([
      `billable actions per claimed instance-hour (${settings})`,
      `${a.perClaimedInstanceHour}`,
      '≤ 10',
      yes(a.perClaimedInstanceHour <= 10),
    ]);
  }
  if (r.claim) {
    const c = r.claim;
    const f = c.floor;
    const health = `health every ${c.healthIntervalMs / 1000} s`;
    if (f) {
      const floorRow = (what: string, run: FloorBench['bare'], conc: boolean) => [
        `floor: ${what}, ${conc ? '20 concurrent' : 'alone'} (n=${conc ? run.concurrent.n : run.alone.n})`,
        `p50 ${ms(conc ? run.concurrent.p50 : run.alone.p50)}, p99 ${ms(conc ? run.concurrent.p99 : run.alone.p99)}; ` +
          `${conc ? run.cpuMsPerOp.concurrent : run.cpuMsPerOp.alone} CPU-ms per Update`,
        'reference',
        '—',
      ];
      rows.push(floorRow('bare Update to a parked workflow', f.bare, true));
      rows.push(floorRow('bare Update to a parked workflow', f.bare, false));
      rows.push(
        floorRow(
          'claim-shaped Update (validator, local activity with an HTTP call, search-attribute upsert)',
          f.shaped,
          true,
        ),
      );
      rows.push(floorRow('claim-shaped Update', f.shaped, false));
      if (f.durable) {
        rows.push(
          floorRow(
            'durable floor: the claim-shaped Update through a bare Fastify route, an idempotency row before and after, the outcome row written by the local activity',
            f.durable,
            true,
          ),
        );
        rows.push(floorRow('durable floor', f.durable, false));
      }
    }
    rows.push([
      `claim, warm pool, 20 concurrent (n=${c.claimConcurrent.n}; ${health})`,
      `p50 ${ms(c.claimConcurrent.p50)}, p99 ${ms(c.claimConcurrent.p99)}; ${c.cpuMsPerClaim.concurrent} CPU-ms per claim`,
      f ? 'see the ratios' : 'p50 ≤ 50 ms, p99 ≤ 150 ms',
      f ? '—' : yes(c.claimConcurrent.p50 <= 50 && c.claimConcurrent.p99 <= 150),
    ]);
    rows.push([
      `claim, warm pool, alone (n=${c.claimAlone.n})`,
      `p50 ${ms(c.claimAlone.p50)}, p99 ${ms(c.claimAlone.p99)}; ${c.cpuMsPerClaim.alone} CPU-ms per claim`,
      '—',
      '—',
    ]);
    if (f) {
      const conc = c.claimConcurrent.p50 / f.shaped.concurrent.p50;
      const alone = c.claimAlone.p50 / f.shaped.alone.p50;
      const cpu = c.cpuMsPerClaim.concurrent / f.shaped.cpuMsPerOp.concurrent;
      const cpuAlone = c.cpuMsPerClaim.alone / f.shaped.cpuMsPerOp.alone;
      rows.push([
        'claim / shaped floor at p50, 20 concurrent',
        `${conc.toFixed(2)}×`,
        '≤ 1.5×',
        yes(conc <= 1.5),
      ]);
      rows.push(['claim / shaped floor at p50, alone', `${alone.toFixed(2)}×`, '≤ 2×', yes(alone <= 2)]);
      rows.push([
        'claim / shaped floor, CPU per operation, 20 concurrent',
        `${cpu.toFixed(2)}× (alone: ${cpuAlone.toFixed(2)}×)`,
        '≤ 1.5×',
        yes(cpu <= 1.5),
      ]);
      const d = f.durable;
      if (d) {
        // What the parts any durable claim through an API must add cost by themselves, and our claim against them.
        const dConc = d.concurrent.p50 / f.shaped.concurrent.p50;
        const dAlone = d.alone.p50 / f.shaped.alone.p50;
        const dCpu = d.cpuMsPerOp.concurrent / f.shaped.cpuMsPerOp.concurrent;
        rows.push([
          'durable floor / shaped floor (p50 20 concurrent, alone; CPU)',
          `${dConc.toFixed(2)}×, ${dAlone.toFixed(2)}×; CPU ${dCpu.toFixed(2)}×`,
          'the limit of the ratios above',
          '—',
        ]);
        rows.push([
          'claim / durable floor (p50 20 concurrent, alone; CPU)',
          `${(c.claimConcurrent.p50 / d.concurrent.p50).toFixed(2)}×, ${(c.claimAlone.p50 / d.alone.p50).toFixed(2)}×; ` +
            `CPU ${(c.cpuMsPerClaim.concurrent / d.cpuMsPerOp.concurrent).toFixed(2)}×`,
          'reference',
          '—',
        ]);
      }
    }
    rows.push([
      `direct claim (row lock + HTTP provision + update), 20 concurrent (n=${c.directConcurrent.n})`,
      `p50 ${ms(c.directConcurrent.p50)}, p99 ${ms(c.directConcurrent.p99)}; ${c.cpuMsPerDirectClaim.concurrent} CPU-ms per claim`,
      'reference (≈ 22 ms p50)',
      '—',
    ]);
    rows.push([
      `direct claim, alone (n=${c.directAlone.n})`,
      `p50 ${ms(c.directAlone.p50)}, p99 ${ms(c.directAlone.p99)}; ${c.cpuMsPerDirectClaim.alone} CPU-ms per claim`,
      'reference (≈ 2 ms p50)',
      '—',
    ]);
    const ratio = c.claimConcurrent.p50 / c.directConcurrent.p50;
    const ratioAlone = c.claimAlone.p50 / c.directAlone.p50;
    rows.push([
      'claim / direct at p50, 20 concurrent',
      `${ratio.toFixed(1)}× (alone: ${ratioAlone.toFixed(1)}×)`,
      f ? 'reference (no durability)' : '≤ 3×',
      f ? '—' : yes(ratio <= 3),
    ]);
  }
  if (r.burst) {
    const b = r.burst;
    const ok =
      b.ok === b.idle &&
      b.distinctInstances === b.idle &&
      b.doubleClaims === 0 &&
      b.unavailable === b.claims - b.idle &&
      b.unavailableWithRetryAfter === b.unavailable;
    rows.push([
      `${b.claims} concurrent claims on ${b.idle} idle (maxWaitMs ${b.maxWaitMs}, no refill)`,
      `${b.ok} × 200 on ${b.distinctInstances} distinct instances, ${b.unavailable} × 503 ` +
        `(${b.unavailableWithRetryAfter} with Retry-After)${b.otherStatuses.length ? `, ${b.otherStatuses.length} other (${[...new Set(b.otherStatuses)].join(', ')})` : ''}; ` +
        `stand-in provisioned ${b.provisionedInStandin}` +
        (b.boundWithoutAnswer ? ` (${b.boundWithoutAnswer} bound to a key that got no 200)` : '') +
        `; double claims ${b.doubleClaims}; ` +
        `200s p50 ${ms(b.okLatency.p50)}, p99 ${ms(b.okLatency.p99)}`,
      `exactly ${b.idle} bindings, rest 503 + Retry-After, 0 double claims`,
      yes(ok),
    ]);
  }
  if (r.fill) {
    rows.push([
      `pool fill 0 → ${r.fill.target} idle (instant stand-in)`,
      `${r.fill.seconds} s (first idle ${r.fill.firstIdleSeconds} s, half ${r.fill.halfSeconds} s); ${r.fill.cpuSeconds} CPU-s`,
      '≤ 10 s',
      yes(r.fill.seconds <= 10),
    ]);
  }
  if (r.memory) {
    const m = r.memory;
    rows.push([
      `worker RSS with ${m.workflows} live instance workflows`,
      `${m.settledMb} MB settled, ${m.peakMb} MB peak (${m.baselineMb} MB with none; filled in ${m.fillSeconds} s)`,
      '≤ 1.2 GB RSS',
      yes(m.peakMb <= 1229),
    ]);
  }
  if (r.firstReply) {
    const f = r.firstReply;
    const load = f.load ? ` (load ${f.load.before} → max ${f.load.max})` : '';
    rows.push([
      `first reply after a claim, real OpenClaw + instant model, p50 over ${f.claims} claims, each claimed after ${idleRange(f)} idle${load}`,
      `p50 ${ms(f.firstReplyMsP50)} (max ${ms(f.firstReplyMsMax)}` +
        (f.coldFirstReplies !== undefined ? `; ${f.coldFirstReplies} of ${f.claims} over 1 s` : '') +
        `); later replies p50 ${ms(f.laterReplyMsP50)}` +
        (f.idleCpuMsPerMinP50 !== undefined
          ? `; idle CPU ${(f.idleCpuMsPerMinP50 / 600).toFixed(1)} % of a core (keep-warm turns included)`
          : ''),
      '≤ 1 s',
      yes(f.firstReplyMsP50 <= 1000),
    ]);
    rows.push([
      `boot to idle (spawn → health ready, warm-up included), p50 over ${f.claims}${load}`,
      `p50 ${ms(f.bootMsP50)} (max ${ms(f.bootMsMax)}); RSS ${f.rssMbP50} MB over ${f.processesP50} processes`,
      '≤ 20 s on an idle machine',
      yes(f.bootMsP50 <= 20_000),
    ]);
  }
  if (r.scale) {
    const c = r.scale;
    const load = c.load ? ` (load ${c.load.before} → max ${c.load.max})` : '';
    rows.push([
      `scale: pool fill 0 → ${c.idle} idle over ${c.workers} workers${load}`,
      `${c.fillSeconds} s`,
      '—',
      '—',
    ]);
    rows.push([
      `scale: claim at ${c.idle} idle, normal health settings`,
      `alone p50 ${ms(c.claimAlone.p50)} (p99 ${ms(c.claimAlone.p99)}); 20 concurrent p50 ${ms(c.claimConcurrent.p50)} (p99 ${ms(c.claimConcurrent.p99)})`,
      '—',
      '—',
    ]);
    // Per each worker's own cached workflows when known (older results: an even split assumed).
    const perThousand =
      c.workerMbPer1000Cached ??
      c.workerRssMb.map((m) => Math.round((m * 1000) / (c.liveWorkflows / c.workers)));
    const holding = c.workerCachedWorkflows ? ` holding ${c.workerCachedWorkflows.join(', ')} workflows` : '';
    const together =
      c.mbPer1000CachedAll !== undefined ? ` (both: ${c.mbPer1000CachedAll} MB per 1,000)` : '';
    rows.push([
      `scale: worker RSS with ${c.liveWorkflows} live instance workflows over ${c.workers} workers`,
      `${c.workerRssMb.join(' MB, ')} MB settled${holding} (peak ${c.workerPeakRssMb.join(' MB, ')} MB): ${perThousand.join(', ')} MB per 1,000${together}`,
      '≤ 600 MB per 1,000',
      yes((c.mbPer1000CachedAll !== undefined ? [c.mbPer1000CachedAll] : perThousand).every((m) => m <= 600)),
    ]);
    rows.push([
      `scale: ${c.killed} runtimes killed at once (normal health settings)`,
      `all acted on in ${c.killedDetectedSeconds} s, all replaced (idle back to ${c.idle}) in ${c.killedReplacedSeconds} s`,
      'acted on ≤ 60 s',
      yes(c.killedDetectedSeconds <= 60),
    ]);
  }
  const header = ['benchmark', 'measured', 'target', 'met'];
  const lines = [header, header.map(() => '---'), ...rows].map((cols) => `| ${cols.join(' | ')} |`);
  return lines.join('\n');
}

function renderProfile(title: string, p: ClaimProfile): string {
  const lines = [
    `${title} (median over ${p.sampled} claims; per claim ${p.workflowTasks} workflow tasks, ${p.localActivities} local activities, ` +
      `${p.otherMarkers ?? 0} other markers, ${p.searchAttributeUpserts ?? 0} search-attribute upserts):`,
    '',
    '| phase | p50 |',
    '| --- | --- |',
    ...(Object.keys(PHASES) as Phase[]).map((k) => `| ${PHASES[k]} | ${ms(p.p50[k])} |`),
  ];
  return lines.join('\n');
}

export function renderResults(r: BenchResults): string {
  const all: Array<Stamp | undefined> = [
    r.claim,
    r.burst,
    r.fill,
    r.memory,
    r.firstReply,
    r.actions,
    r.scale,
  ];
  const stamps = all
    .filter((x): x is Stamp => x !== undefined)
    .map((x) => x.measuredAt.slice(0, 16).replace('T', ' '));
  const when = [...new Set(stamps)].join(', ');
  const m = r.machine;
  const parts = [
    `Measured ${when} UTC on ${m ? `${m.cpus} cores (${m.cpuModel}), ${m.memoryGb} GB, Node ${m.node}` : 'unknown machine'}` +
      `; the benchmarks took ${Math.round(all.reduce((t, x) => t + (x?.runSeconds ?? 0), 0))} s in all ` +
      '(stack start and stop included).',
    '',
    renderTable(r),
  ];
  const loads = (['claim', 'burst', 'fill', 'memory', 'firstReply', 'actions', 'scale'] as const)
    .filter((k) => r[k]?.load)
    .map((k) => `${k} ${r[k]!.load!.before} → max ${r[k]!.load!.max}`);
  if (loads.length) {
    parts.push(
      '',
      `Machine load during each benchmark (1-minute load average; the machine has ${m?.cpus ?? '?'} cores, ` +
        `so anything well above that means other processes were competing for the CPU): ${loads.join('; ')}.`,
    );
  }
  const cores = m?.cpus ?? 2;
  const bounds: string[] = [];
  if (r.claim) {
    const c = r.claim;
    bounds.push(
      `a claim costs the stack ${c.cpuMsPerClaim.concurrent} CPU-ms at 20 concurrent, so ${cores} cores ` +
        `finish at most ${Math.round((1000 * cores) / c.cpuMsPerClaim.concurrent)} claims/s, and with 20 in flight ` +
        `the mean latency cannot be below 20 × ${c.cpuMsPerClaim.concurrent} / ${cores} ≈ ` +
        `${Math.round((20 * c.cpuMsPerClaim.concurrent) / cores)} ms (Little's law); the direct claim costs ` +
        `${c.cpuMsPerDirectClaim.concurrent} CPU-ms (≥ ${Math.round((20 * c.cpuMsPerDirectClaim.concurrent) / cores)} ms at 20 in flight)`,
    );
    const p = c.cpuMsPerClaimByPart;
    if (p) {
      bounds.push(
        `per claim, the Node process (API, worker, stand-in, load generator) used ${p.node} CPU-ms, ` +
          `the Temporal dev server ${p.temporal} and Postgres ${p.postgres}`,
      );
    }
  }
  if (r.fill) {
    bounds.push(
      `the fill to ${r.fill.target} cost ${r.fill.cpuSeconds} CPU-s, so it cannot take less than ` +
        `${Math.round((10 * r.fill.cpuSeconds) / cores) / 10} s on ${cores} cores`,
    );
  }
  if (bounds.length) {
    parts.push(
      '',
      `What the CPU spent says independently of other load (CPU of this process tree, the Temporal dev ` +
        `server and the stack's Postgres backends, load generator included): ${bounds.join('; ')}.`,
    );
  }
  if (r.claim) {
    parts.push(
      '',
      renderProfile('Where a claim spends its time, alone', r.claim.profileAlone),
      '',
      renderProfile('Where a claim spends its time, 20 concurrent', r.claim.profileConcurrent),
    );
  }
  return parts.join('\n');
}

const START = '<!-- bench:results:start (written by npm run bench) -->';
const END = '<!-- bench:results:end -->';

export function writeDocs(r: BenchResults, file: string) {
  const block = `${START}\n${renderResults(r)}\n${END}`;
  const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const i = existing.indexOf(START);
  const j = existing.indexOf(END);
  const text =
    i >= 0 && j > i
      ? existing.slice(0, i) + block + existing.slice(j + END.length)
      : `# Benchmarks\n\n${block}\n`;
  fs.writeFileSync(file, text);
}
