/** Summarizes a `.cpuprofile` (./cpu-profile.ts): self time by package or project directory, and top functions. */
import fs from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const file = process.argv[2]!;
const p = JSON.parse(fs.readFileSync(file, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (const [i, id] of p.samples.entries()) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const group = (url: string, fn: string) => {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url;
  const m = /wt-claimfloor\/([^/]+\/?[^/]*)/.exec(url) ?? /main\/([^/]+\/?[^/]*)/.exec(url);
  return m ? m[1]! : url.slice(-60);
};
const groups = new Map<string, number>();
const fns = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const g = group(n.callFrame.url, n.callFrame.functionName);
  groups.set(g, (groups.get(g) ?? 0) + t);
  const f = `${n.callFrame.functionName || '(anon)'} ${g}:${n.callFrame.lineNumber}`;
  fns.set(f, (fns.get(f) ?? 0) + t);
}
const top = (m: Map<string, number>, k: number) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(
      ([name, t]) =>
        `${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${name}`,
    )
    .join('\n');
console.log(
  `total ${(total / 1000).toFixed(0)} ms sampled\n\nby group:\n${top(groups, 25)}\n\ntop functions:\n${top(fns, 30)}`,
);
