/**
 * The layers, checked on the sources: contracts import nothing; the API imports nothing from activities/
 * (what both sides share is in contracts/); workflows take only types from activities/; no product path
 * imports from test/; the runtime stand-in runs on plain Node (only node:* imports).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const PRODUCT = [
  'activities',
  'api',
  'catalog',
  'config',
  'contracts',
  'drizzle',
  'scripts',
  'system',
  'workers',
  'workflows',
];

function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|mjs)$/.test(f) && !f.endsWith('.test.ts') && !f.includes('node_modules'))
    .map((f) => path.join(dir, f));
}

interface Import {
  specifier: string;
  /** `import type …`, or every named specifier is `type …`. */
  typeOnly: boolean;
  /** The imported file's folder under the root (e.g. `activities`), null for packages. */
  target: string | null;
}

function imports(file: string): Import[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const found: Import[] = [];
  const statement = /^(?:import|export)\s+(type\s+)?([^;]*?)\s*from\s*['"]([^'"]+)['"]/gm;
  const bare = /^import\s+['"]([^'"]+)['"]/gm;
  const dynamic = /import\(\s*['"]([^'"]+)['"]\s*\)/g;
  const add = (specifier: string, typeOnly: boolean) => {
    const target = specifier.startsWith('.')
      ? path.relative(root, path.resolve(path.dirname(path.join(root, file)), specifier)).split(path.sep)[0]!
      : null;
    found.push({ specifier, typeOnly, target });
  };
  for (const m of text.matchAll(statement)) {
    const clause = (m[2] ?? '').trim();
    const named = /^\{([^}]*)\}$/.exec(clause)?.[1];
    const names = (named ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    add(m[3]!, Boolean(m[1]) || (named !== undefined && names.every((n) => n.startsWith('type '))));
  }
  for (const m of text.matchAll(bare)) add(m[1]!, false);
  for (const m of text.matchAll(dynamic)) add(m[1]!, false);
  return found;
}

describe('layers', () => {
  it('contracts/ imports nothing', () => {
    for (const file of sources('contracts')) expect(imports(file), file).toEqual([]);
  });

  it('the API imports nothing from activities/', () => {
    for (const file of sources('api')) {
      const offending = imports(file).filter((i) => i.target === 'activities');
      expect(
        offending.map((i) => i.specifier),
        file,
      ).toEqual([]);
    }
  });

  it('workflows take only types from activities/', () => {
    for (const file of sources('workflows')) {
      const offending = imports(file).filter((i) => i.target === 'activities' && !i.typeOnly);
      expect(
        offending.map((i) => i.specifier),
        file,
      ).toEqual([]);
    }
  });

  it('no product path imports from test/ or names a file under it', () => {
    for (const file of PRODUCT.flatMap(sources)) {
      const offending = imports(file).filter((i) => i.target === 'test');
      expect(
        offending.map((i) => i.specifier),
        file,
      ).toEqual([]);
      expect(fs.readFileSync(path.join(root, file), 'utf8'), file).not.toMatch(
        /['"]test['"]\s*,|['"/]test\/standins/,
      );
    }
  });

  it('the runtime stand-in runs on plain Node: only node:* imports', () => {
    const specifiers = imports('tools/runtime-standin/server.ts').map((i) => i.specifier);
    expect(specifiers.length).toBeGreaterThan(0);
    expect(specifiers.filter((s) => !s.startsWith('node:'))).toEqual([]);
  });

  it('sees the imports it checks', () => {
    // The parser itself: a value import, a type-only import, and inline type specifiers.
    const seen = imports('workflows/reconcile.ts');
    expect(seen.find((i) => i.specifier === '@temporalio/workflow')?.typeOnly).toBe(false);
    expect(seen.find((i) => i.specifier === '../activities')).toMatchObject({
      typeOnly: true,
      target: 'activities',
    });
    expect(imports('system/index.ts').some((i) => i.target === 'activities' && !i.typeOnly)).toBe(true);
  });
});
