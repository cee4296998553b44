/**
 * A small parser of the Prometheus text exposition format (0.0.4), for tests that scrape `/metrics`: metric
 * families (from `# TYPE`, and from samples without one) and samples with their labels. Enough for what our
 * endpoints and the Temporal SDK's exporter write; it throws on a line it cannot read, so a malformed
 * exposition fails the test.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Family name → type (`counter`, `gauge`, `histogram`, `summary`, `untyped`). */
  families: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(text: string): number {
  // Prometheus reads them case-insensitively (Go's ParseFloat); prom-client writes NaN as `Nan`.
  const word = text.toLowerCase();
  if (word === '+inf' || word === 'inf') return Number.POSITIVE_INFINITY;
  if (word === '-inf') return Number.NEGATIVE_INFINITY;
  if (word === 'nan') return Number.NaN;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) throw new Error(`not a sample value: ${JSON.stringify(text)}`);
  return n;
}

function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1; // after '{'
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i += 1;
    if (line[i] === '}') return { labels, end: i + 1 };
    const name = NAME.exec(line.slice(i))?.[0];
    if (!name) throw new Error(`bad label name at ${i}: ${line}`);
    i += name.length;
    if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`bad label at ${i}: ${line}`);
    i += 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error(`unterminated label value: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const next = line[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
        continue;
      }
      value += c;
      i += 1;
    }
    labels[name] = value;
    i += 1;
  }
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!line) continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m) families.set(m[1]!, m[2]!);
      else if (line.startsWith('# TYPE')) throw new Error(`bad TYPE line: ${line}`);
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) throw new Error(`bad sample line: ${line}`);
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i));
    const rest = line.slice(i).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2) throw new Error(`bad sample line: ${line}`);
    samples.push({ name, labels, value: parseValue(rest[0]!) });
    if (!families.has(familyOf(name, families))) families.set(name, 'untyped');
  }
  return { families, samples };
}

/** The family a sample belongs to: `x_bucket`, `x_sum`, `x_count` of histogram or summary `x` belong to `x`. */
export function familyOf(sample: string, families: Map<string, string>): string {
  const m = /^(.*)_(bucket|sum|count|total|created)$/.exec(sample);
  if (m && families.has(m[1]!) && !families.has(sample)) return m[1]!;
  return sample;
}

/** The names a query may use for the families: each family's name and its histogram/summary sample names. */
export function seriesNames(exposition: Exposition): Set<string> {
  const names = new Set<string>();
  for (const [name, type] of exposition.families) {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  for (const s of exposition.samples) names.add(s.name);
  return names;
}

/** The value of the one sample of `name` whose labels include `labels` (summed if several match; 0 if none). */
export function sampleValue(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number {
  return exposition.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
