/**
 * The PromQL of the dashboard (ops/grafana/convos-agents.json) evaluated over two scrapes, for
 * `scripts/metrics-snapshot.ts`: no Prometheus, so no stored history. A range (`rate(x[5m])`, `[1h]`) is
 * the window between the two scrapes, whatever it says; an instant selector reads the second scrape. What the
 * dashboard uses is supported (selectors with `=`, `!=`, `=~`, `!~`; `rate`, `irate`, `increase`;
 * `sum`/`min`/`max`/`avg`/`count` with `by`/`without`; `histogram_quantile`; `+ - * /` between scalars and
 * one-to-one vectors); anything else throws, naming what is not supported, rather than drawing something wrong.
 */
import { parser } from '@prometheus-io/lezer-promql';
import type { Sample } from './prometheus-text';

type Node = ReturnType<typeof parser.parse>['topNode'];

/** One scrape of every endpoint: when (ms), and its samples (with the `instance` label a scraper adds). */
export interface Scrape {
  at: number;
  samples: Sample[];
}

export interface Series {
  labels: Record<string, string>;
  value: number;
}

type Value = { kind: 'scalar'; value: number } | { kind: 'vector'; series: Series[] };

interface Context {
  first: Scrape;
  last: Scrape;
  text: string;
}

const children = (node: Node): Node[] => {
  const out: Node[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
};
const child = (node: Node, name: string) => children(node).find((c) => c.name === name);
const textOf = (ctx: Context, node: Node) => ctx.text.slice(node.from, node.to);
const unsupported = (ctx: Context, node: Node): never => {
  throw new Error(`not supported by the snapshot: ${node.name} "${textOf(ctx, node)}"`);
};

/** A label set's identity, `__name__` left out unless asked for. */
const keyOf = (labels: Record<string, string>, keepName = false) =>
  JSON.stringify(
    Object.entries(labels)
      .filter(([k]) => keepName || k !== '__name__')
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );

const withoutName = ({ __name__: _, ...rest }: Record<string, string>) => rest;

function unquote(literal: string): string {
  if (literal.startsWith('"')) return JSON.parse(literal) as string;
  return literal.slice(1, -1);
}

/** The samples of one scrape a vector selector picks, `__name__` among their labels. */
function select(ctx: Context, node: Node, scrape: Scrape): Series[] {
  const name = child(node, 'Identifier');
  const matchers: Array<(labels: Record<string, string>) => boolean> = [];
  if (name) {
    const wanted = textOf(ctx, name);
    matchers.push((l) => l.__name__ === wanted);
  }
  const list = child(node, 'LabelMatchers');
  for (const m of list ? children(list) : []) {
    if (m.name !== 'UnquotedLabelMatcher') unsupported(ctx, m);
    const label = textOf(ctx, child(m, 'LabelName')!);
    const op = child(m, 'MatchOp')?.firstChild?.name;
    const value = unquote(textOf(ctx, child(m, 'StringLiteral')!));
    const re = new RegExp(`^(?:${value})$`);
    const test: Record<string, (v: string) => boolean> = {
      EqlSingle: (v) => v === value,
      Neq: (v) => v !== value,
      EqlRegex: (v) => re.test(v),
      NeqRegex: (v) => !re.test(v),
    };
    const matches = test[op ?? ''] ?? unsupported(ctx, m);
    matchers.push((l) => matches(l[label] ?? ''));
  }
  return scrape.samples
    .map((s) => ({ labels: { __name__: s.name, ...s.labels }, value: s.value }))
    .filter((s) => matchers.every((m) => m(s.labels)));
}

/** rate, irate, increase of a counter over the two scrapes (a counter reset counts from zero). */
function overWindow(ctx: Context, fn: string, arg: Node): Series[] {
  if (arg.name !== 'MatrixSelector') unsupported(ctx, arg);
  const selector = child(arg, 'VectorSelector') ?? unsupported(ctx, arg);
  const before = new Map(select(ctx, selector, ctx.first).map((s) => [keyOf(s.labels, true), s.value]));
  const seconds = (ctx.last.at - ctx.first.at) / 1000;
  const out: Series[] = [];
  for (const s of select(ctx, selector, ctx.last)) {
    const start = before.get(keyOf(s.labels, true));
    if (start === undefined) continue;
    const increase = s.value >= start ? s.value - start : s.value;
    out.push({ labels: withoutName(s.labels), value: fn === 'increase' ? increase : increase / seconds });
  }
  return out;
}

/** Prometheus's bucketQuantile: linear interpolation inside the bucket the rank falls in. */
export function bucketQuantile(q: number, buckets: Array<{ le: number; count: number }>): number {
  if (q < 0) return Number.NEGATIVE_INFINITY;
  if (q > 1) return Number.POSITIVE_INFINITY;
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  if (sorted.length < 2 || sorted.at(-1)!.le !== Number.POSITIVE_INFINITY) return Number.NaN;
  const total = sorted.at(-1)!.count;
  if (!(total > 0)) return Number.NaN;
  const rank = q * total;
  const b = sorted.findIndex((bucket) => bucket.count >= rank);
  if (b === sorted.length - 1) return sorted[sorted.length - 2]!.le;
  if (b === 0 && sorted[0]!.le <= 0) return sorted[0]!.le;
  const start = b === 0 ? 0 : sorted[b - 1]!.le;
  const countStart = b === 0 ? 0 : sorted[b - 1]!.count;
  const { le: end, count } = sorted[b]!;
  return start + (end - start) * ((rank - countStart) / (count - countStart));
}

function histogramQuantile(q: number, series: Series[]): Series[] {
  const groups = new Map<
    string,
    { labels: Record<string, string>; buckets: Array<{ le: number; count: number }> }
  >();
  for (const s of series) {
    const { le, ...labels } = withoutName(s.labels);
    if (le === undefined) continue;
    const key = keyOf(labels);
    const group = groups.get(key) ?? { labels, buckets: [] };
    group.buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: s.value });
    groups.set(key, group);
  }
  return [...groups.values()].map((g) => ({ labels: g.labels, value: bucketQuantile(q, g.buckets) }));
}

const AGGREGATE: Record<string, (values: number[]) => number> = {
  Sum: (v) => v.reduce((a, b) => a + b, 0),
  Min: (v) => Math.min(...v),
  Max: (v) => Math.max(...v),
  Avg: (v) => v.reduce((a, b) => a + b, 0) / v.length,
  Count: (v) => v.length,
};

function aggregate(ctx: Context, node: Node): Series[] {
  const op = child(node, 'AggregateOp')?.firstChild;
  const fold = (op && AGGREGATE[op.name]) ?? unsupported(ctx, node);
  const modifier = child(node, 'AggregateModifier');
  const grouping = modifier ? children(child(modifier, 'GroupingLabels')!).map((l) => textOf(ctx, l)) : [];
  const without = modifier?.firstChild?.name === 'Without';
  const body = children(child(node, 'FunctionCallBody')!);
  if (body.length !== 1) unsupported(ctx, node);
  const groups = new Map<string, { labels: Record<string, string>; values: number[] }>();
  for (const s of vector(ctx, body[0]!)) {
    const labels = without
      ? Object.fromEntries(Object.entries(withoutName(s.labels)).filter(([k]) => !grouping.includes(k)))
      : Object.fromEntries(grouping.filter((k) => s.labels[k] !== undefined).map((k) => [k, s.labels[k]!]));
    const key = keyOf(labels);
    const group = groups.get(key) ?? { labels, values: [] };
    group.values.push(s.value);
    groups.set(key, group);
  }
  return [...groups.values()].map((g) => ({ labels: g.labels, value: fold(g.values) }));
}

const ARITHMETIC: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => a / b,
};

function binary(ctx: Context, node: Node): Value {
  const parts = children(node);
  if (parts.length !== 3) unsupported(ctx, node);
  const [lhsNode, opNode, rhsNode] = parts as [Node, Node, Node];
  const op = ARITHMETIC[opNode.name] ?? unsupported(ctx, opNode);
  const lhs = evaluateNode(ctx, lhsNode);
  const rhs = evaluateNode(ctx, rhsNode);
  if (lhs.kind === 'scalar' && rhs.kind === 'scalar')
    return { kind: 'scalar', value: op(lhs.value, rhs.value) };
  if (lhs.kind === 'scalar' || rhs.kind === 'scalar') {
    const [scalar, vec] =
      lhs.kind === 'scalar'
        ? [lhs, rhs as Value & { kind: 'vector' }]
        : [rhs as Value & { kind: 'scalar' }, lhs];
    const s = (scalar as { value: number }).value;
    return {
      kind: 'vector',
      series: vec.series.map((v) => ({
        labels: withoutName(v.labels),
        value: lhs.kind === 'scalar' ? op(s, v.value) : op(v.value, s),
      })),
    };
  }
  // One-to-one: the series of both sides with the same labels (names aside).
  const right = new Map(rhs.series.map((s) => [keyOf(s.labels), s.value]));
  const series: Series[] = [];
  for (const l of lhs.series) {
    const r = right.get(keyOf(l.labels));
    if (r !== undefined) series.push({ labels: withoutName(l.labels), value: op(l.value, r) });
  }
  return { kind: 'vector', series };
}

function vector(ctx: Context, node: Node): Series[] {
  const value = evaluateNode(ctx, node);
  if (value.kind !== 'vector') unsupported(ctx, node);
  return (value as { series: Series[] }).series;
}

function evaluateNode(ctx: Context, node: Node): Value {
  switch (node.name) {
    case 'PromQL':
    case 'ParenExpr': {
      const inner = children(node);
      if (inner.length !== 1) unsupported(ctx, node);
      return evaluateNode(ctx, inner[0]!);
    }
    case 'NumberDurationLiteral':
      return { kind: 'scalar', value: Number(textOf(ctx, node)) };
    case 'VectorSelector':
      return { kind: 'vector', series: select(ctx, node, ctx.last) };
    case 'AggregateExpr':
      return { kind: 'vector', series: aggregate(ctx, node) };
    case 'BinaryExpr':
      return binary(ctx, node);
    case 'FunctionCall': {
      const fn = textOf(ctx, child(node, 'FunctionIdentifier')!);
      const args = children(child(node, 'FunctionCallBody')!);
      if (['rate', 'irate', 'increase'].includes(fn) && args.length === 1)
        return { kind: 'vector', series: overWindow(ctx, fn, args[0]!) };
      if (fn === 'histogram_quantile' && args.length === 2) {
        const q = evaluateNode(ctx, args[0]!);
        if (q.kind !== 'scalar') unsupported(ctx, args[0]!);
        return {
          kind: 'vector',
          series: histogramQuantile((q as { value: number }).value, vector(ctx, args[1]!)),
        };
      }
      return unsupported(ctx, node);
    }
    default:
      return unsupported(ctx, node);
  }
}

/** `expr` evaluated at the second scrape, its ranges over the window since the first. */
export function evaluate(expr: string, first: Scrape, last: Scrape): Series[] {
  const tree = parser.parse(expr);
  let error: number | null = null;
  tree.iterate({
    enter(n) {
      if (n.type.isError) error ??= n.from;
    },
  });
  if (error !== null) throw new Error(`PromQL does not parse at ${error}: ${expr}`);
  const ctx: Context = { first, last, text: expr };
  const value = evaluateNode(ctx, tree.topNode);
  return value.kind === 'scalar' ? [{ labels: {}, value: value.value }] : value.series;
}

/** Grafana's variables in a dashboard query: `$pool` (a regex), and the intervals as the scrapes' window. */
export function substituteVariables(expr: string, vars: { pool: string; windowSeconds: number }): string {
  return expr
    .replaceAll(
      /\$__rate_interval|\$__interval|\$__range/g,
      `${Math.max(1, Math.round(vars.windowSeconds))}s`,
    )
    .replaceAll(/\$\{?pool(:[a-z]+)?\}?/g, vars.pool);
}

/** A Grafana legend (`{{provider}} {{step}}`) for one series; its labels when there is none. */
export function legendOf(format: string | undefined, labels: Record<string, string>): string {
  if (format)
    return format.replaceAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, k: string) => labels[k] ?? '');
  const entries = Object.entries(labels);
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${v}"`).join(', ')}}` : 'value';
}
