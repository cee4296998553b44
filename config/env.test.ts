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

  describe('a railway pool', () => {
    const railway = {
      COMPUTE_PROVIDER: 'railway',
      RAILWAY_API_TOKEN: 'tok-123456',
      POOL_API_URL: 'https://pool.example.com',
      XMTP_ENV: 'production',
    };
    it('starts with a public POOL_API_URL, an explicit XMTP_ENV and no shared model key', () => {
      expect(parseEnv(railway).POOL_API_URL).toBe('https://pool.example.com');
      expect(parseEnv({ ...railway, MODEL_BASE_URL: 'https://models.example.com/v1' }).MODEL_BASE_URL).toBe(
        'https://models.example.com/v1',
      );
    });
    it.each([
      ['unset', undefined, /needs POOL_API_URL/],
      ['loopback', 'http://127.0.0.1:3001', /got a loopback address/],
      ['localhost', 'http://localhost:3001', /resolves only inside a private network/],
      ['private', 'http://10.1.2.3', /got a private address/],
      ['private 172.16/12', 'http://172.20.0.5:3001', /got a private address/],
      ['Railway private network', 'http://pool.railway.internal:3001', /private network/],
      ['IPv6 loopback', 'http://[::1]:3001', /loopback/],
      ['link-local', 'http://169.254.169.254', /link-local/],
      ['a bare name', 'http://api:3001', /bare host name/],
    ])('refuses a POOL_API_URL that is %s', (_, url, message) => {
      expect(() => parseEnv({ ...railway, POOL_API_URL: url })).toThrow(message);
    });
    it('refuses the local XMTP default and a local XMTP node', () => {
      expect(() => parseEnv({ ...railway, XMTP_ENV: undefined })).toThrow(/needs XMTP_ENV set explicitly/);
      expect(() => parseEnv({ ...railway, XMTP_ENV: 'local' })).toThrow(/needs XMTP_ENV set explicitly/);
      expect(parseEnv({ ...railway, XMTP_ENV: 'off' }).XMTP_ENV).toBe('off');
    });
    it('refuses shared model keys and a model server it cannot reach, naming the variable', () => {
      expect(() => parseEnv({ ...railway, OPENROUTER_API_KEY: 'sk-or-shared' })).toThrow(
        /OPENROUTER_API_KEY is a shared model key/,
      );
      expect(() => parseEnv({ ...railway, MODEL_API_KEY: 'sk-shared' })).toThrow(/MODEL_API_KEY is a shared/);
      expect(() => parseEnv({ ...railway, MODEL_BASE_URL: 'http://127.0.0.1:11434/v1' })).toThrow(
        /MODEL_BASE_URL must be reachable from railway instances/,
      );
      // The key itself is never echoed.
      expect(() => parseEnv({ ...railway, OPENROUTER_API_KEY: 'sk-or-shared' })).not.toThrow(/sk-or-shared/);
    });
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
      bankr: null,
      wallet: false,
    });
    // Payments are off without BANKR_API_KEY; their limits default to $20 a day, confirmation above $5.
    expect(config.payments).toEqual({ dailyCapMicros: 20_000_000, confirmAboveMicros: 5_000_000 });
    expect(loadConfig({ PAYMENTS_DAILY_CAP_USD: '0.5', PAYMENTS_CONFIRM_ABOVE_USD: '0' }).payments).toEqual({
      dailyCapMicros: 500_000,
      confirmAboveMicros: 0,
    });
    expect(() => loadConfig({ PAYMENTS_DAILY_CAP_USD: '0' })).toThrow(
      /PAYMENTS_DAILY_CAP_USD must be a number between/,
    );
    expect(config.instanceTimings.startDeadlineMs).toBe(900_000);
  });

  it('derives the public URL from host and port unless POOL_API_URL is set', () => {
    expect(loadConfig({ API_HOST: '0.0.0.0', API_PORT: '8080' }).api.publicUrl).toBe('http://0.0.0.0:8080');
    expect(loadConfig({ POOL_API_URL: 'https://pool.example' }).api.publicUrl).toBe('https://pool.example');
  });
});
