/**
 * The configuration schema against the README's configuration table (the user-facing list): the same
 * variables, and the same defaults wherever the table states one as a literal. Plus parsing: defaults,
 * bounds, and one error naming every bad variable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnvSchema, loadConfig, parseEnv } from './env';

const readme = fs.readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');

/** The rows of the table under `## Configuration`: the variables of the first cell, the default cell. */
function readmeRows(): Array<{ names: string[]; defaults: string }> {
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const [first = '', defaults = ''] = line.slice(1).split(' | ');
      const names = [...first.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!);
      return { names, defaults: defaults.trim() };
    });
}

const schema = EnvSchema.properties as Record<string, { default?: unknown }>;

describe('the README configuration table', () => {
  const rows = readmeRows();

  it('lists every variable of the schema, and only those', () => {
    const listed = rows.flatMap((r) => r.names);
    expect(rows.length).toBeGreaterThan(20);
    expect(new Set(listed).size, 'a variable listed twice').toBe(listed.length);
    expect([...listed].sort()).toEqual(Object.keys(schema).sort());
  });

  it("states the schema's defaults (where it gives them as literals)", () => {
    for (const { names, defaults } of rows) {
      // `a`, `b` — one literal per variable of the row; anything else is prose and not compared.
      if (!/^`[^`]*`(, `[^`]*`)*$/.test(defaults)) continue;
      const literals = [...defaults.matchAll(/`([^`]*)`/g)].map((m) => m[1]);
      expect(literals, `the defaults of ${names.join(', ')}`).toHaveLength(names.length);
      names.forEach((name, i) => {
        const declared = schema[name]?.default;
        expect(declared, `${name} has no default in the schema; the README says \`${literals[i]}\``).not.toBe(
          undefined,
        );
        expect(String(declared), `the default of ${name}`).toBe(literals[i]);
      });
    }
  });
});

describe('parseEnv', () => {
  it('fills in the defaults and types numbers', () => {
    const vars = parseEnv({ POOL_TARGET_IDLE: '7', RAILWAY_CPU: '1.5', API_PORT: '' });
    expect(vars.POOL_TARGET_IDLE).toBe(7);
    expect(vars.RAILWAY_CPU).toBe(1.5);
    expect(vars.API_PORT).toBe(3001);
    expect(vars.XMTP_ENV).toBe('off');
    expect(vars.DATABASE_URL).toBeUndefined();
  });

  it('names every bad variable in one error', () => {
    expect(() => parseEnv({ POOL_TARGET_IDLE: '1001', XMTP_ENV: 'mainnet', API_PORT: '3.5' })).toThrow(
      [
        'invalid configuration:',
        '  POOL_TARGET_IDLE must be an integer between 0 and 1000, got "1001"',
        '  XMTP_ENV must be one of dev, production, local, off, got "mainnet"',
        '  API_PORT must be an integer between 1 and 65535, got "3.5"',
      ].join('\n'),
    );
    expect(() => parseEnv({ INSTANCE_MAX_RESTARTS: '-1' })).toThrow(
      'INSTANCE_MAX_RESTARTS must be an integer of at least 0, got "-1"',
    );
  });

  it('keeps the companion rules', () => {
    expect(() => parseEnv({ COMPUTE_PROVIDER: 'railway' })).toThrow(
      'COMPUTE_PROVIDER=railway needs RAILWAY_API_TOKEN',
    );
    expect(() => parseEnv({ TELNYX_API_KEY: 'KEY' })).toThrow(
      'TELNYX_API_KEY needs TELNYX_MESSAGING_PROFILE_ID',
    );
  });
});

describe('loadConfig', () => {
  it('is the local stack with nothing set', () => {
    const config = loadConfig({});
    const { connection, ...temporal } = config.temporal;
    expect(temporal).toEqual({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'convos-agents' });
    expect(connection.options()).toEqual({ address: '127.0.0.1:7233' });
    expect(config.api.publicUrl).toBe('http://127.0.0.1:3001');
    expect(config.providers).toEqual({
      railway: null,
      openrouter: null,
      agentmail: null,
      telnyx: null,
      wallet: true,
    });
    expect(config.instanceTimings.startDeadlineMs).toBe(900_000);
  });

  it('derives the public URL from host and port unless POOL_API_URL is set', () => {
    expect(loadConfig({ API_HOST: '0.0.0.0', API_PORT: '8080' }).api.publicUrl).toBe('http://0.0.0.0:8080');
    expect(loadConfig({ POOL_API_URL: 'https://pool.example' }).api.publicUrl).toBe('https://pool.example');
  });
});
