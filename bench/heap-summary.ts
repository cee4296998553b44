/**
 * `tsx bench/heap-summary.ts <file.heapsnapshot> [top]`: a V8 heap snapshot's self sizes added up by node type
 * and constructor (or, for closures, code and strings, by kind), the biggest first, so a worker's heap can be
 * read without DevTools. Written for bench/memory-probe.ts's snapshots of the worker and its workflow threads.
 */
import fs from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: tsx bench/heap-summary.ts <file.heapsnapshot> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 40);
const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const at = { type: fields.indexOf('type'), name: fields.indexOf('name'), size: fields.indexOf('self_size') };
const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + at.type]!]!;
  const size = snap.nodes[i + at.size]!;
  let name = snap.strings[snap.nodes[i + at.name]!] ?? '';
  // Strings and code carry their content or source as name: group those by type alone.
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number')
    name = '';
  if (type === 'code') name = name.replace(/\(.*$/, '').slice(0, 40);
  if (type === 'closure') name = '';
  const key = `${type} ${name.slice(0, 80)}`;
  const g = groups.get(key) ?? { count: 0, bytes: 0 };
  g.count += 1;
  g.bytes += size;
  groups.set(key, g);
  total += size;
}
console.log(`${file}: ${snap.snapshot.node_count} nodes, ${(total / 2 ** 20).toFixed(1)} MB self size`);
for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top))
  console.log(`${(g.bytes / 2 ** 20).toFixed(2).padStart(8)} MB ${String(g.count).padStart(9)}  ${key}`);
