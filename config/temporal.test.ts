/**
 * The environment → Temporal connection options mapping (envconfig under our defaults): what the worker's
 * `NativeConnection` and the clients' `Connection` are given. A real TLS connection is test/temporal-tls.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnvSchema, loadConfig, parseEnv } from './env';
import { describeTemporal, localTemporal, resolveTemporalConnection } from './temporal';

const DEFAULTS = { address: '127.0.0.1:7233', namespace: 'default' };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temporal-envconfig-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
};
const bytes = (text: string) => new Uint8Array(Buffer.from(text));

describe('the Temporal connection from the environment', () => {
  it('is the local dev server, in plain text, with nothing set', () => {
    const c = resolveTemporalConnection({}, DEFAULTS);
    expect(c).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', tls: false, auth: 'none' });
    expect(c.profile).toBeNull();
    expect(c.options()).toEqual({ address: '127.0.0.1:7233' });
    // The same through the configuration every process loads.
    const config = loadConfig({});
    expect(config.temporal.address).toBe('127.0.0.1:7233');
    expect(config.temporal.connection.options()).toEqual({ address: '127.0.0.1:7233' });
  });

  it('takes TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE (and empty means unset)', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'pool' });
    expect(config.temporal).toMatchObject({ address: 'temporal.internal:7233', namespace: 'pool' });
    expect(config.temporal.connection.options()).toEqual({ address: 'temporal.internal:7233' });
    expect(loadConfig({ TEMPORAL_ADDRESS: '', TEMPORAL_API_KEY: ' ' }).temporal.connection.options()).toEqual(
      {
        address: '127.0.0.1:7233',
      },
    );
  });

  it('turns TLS on with an API key, and sends the key (never printing it)', () => {
    const env = {
      TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233',
      TEMPORAL_NAMESPACE: 'pool.a1b2c',
      TEMPORAL_API_KEY: 'sk-temporal-SECRET-1',
    };
    const config = loadConfig(env);
    const c = config.temporal.connection;
    expect(c).toMatchObject({ tls: true, auth: 'api-key', namespace: 'pool.a1b2c' });
    expect(c.options()).toEqual({
      address: 'us-east-1.aws.api.temporal.io:7233',
      tls: true,
      apiKey: 'sk-temporal-SECRET-1',
    });
    expect(describeTemporal(c)).toBe(
      'us-east-1.aws.api.temporal.io:7233 (namespace pool.a1b2c, TLS on, API key)',
    );
    expect(JSON.stringify(config)).not.toContain('SECRET-1');
    // TEMPORAL_TLS=false wins over the API key's default.
    expect(resolveTemporalConnection({ ...env, TEMPORAL_TLS: 'false' }, DEFAULTS).options().tls).toBe(false);
  });

  it('reads the mTLS client certificate and key, the server CA and the server name', () => {
    const env = {
      TEMPORAL_ADDRESS: 'temporal.example:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem', 'CLIENT CERT'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key', 'CLIENT KEY'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.pem', 'SERVER CA'),
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
    };
    const c = resolveTemporalConnection(env, DEFAULTS);
    expect(c).toMatchObject({ tls: true, auth: 'mtls' });
    expect(c.options()).toEqual({
      address: 'temporal.example:7233',
      tls: {
        serverNameOverride: 'frontend.temporal.internal',
        serverRootCACertificate: bytes('SERVER CA'),
        clientCertPair: { crt: bytes('CLIENT CERT'), key: bytes('CLIENT KEY') },
      },
    });
    expect(JSON.stringify(loadConfig(env))).not.toContain('CLIENT KEY');
    // The _DATA forms instead of paths.
    const data = resolveTemporalConnection(
      { TEMPORAL_TLS_CLIENT_CERT_DATA: 'CERT DATA', TEMPORAL_TLS_CLIENT_KEY_DATA: 'KEY DATA' },
      DEFAULTS,
    ).options();
    expect(data.tls).toMatchObject({ clientCertPair: { crt: bytes('CERT DATA'), key: bytes('KEY DATA') } });
  });

  it('refuses half an mTLS pair, an unreadable file, and host verification turned off', () => {
    expect(() =>
      resolveTemporalConnection({ TEMPORAL_TLS_CLIENT_CERT_PATH: file('only.pem', 'C') }, DEFAULTS),
    ).toThrow(/needs both a client certificate and its key/);
    const missing = path.join(dir, 'nowhere.key');
    const c = resolveTemporalConnection(
      { TEMPORAL_TLS_CLIENT_CERT_PATH: file('c.pem', 'C'), TEMPORAL_TLS_CLIENT_KEY_PATH: missing },
      DEFAULTS,
    );
    expect(() => c.options()).toThrow(missing);
    expect(() =>
      resolveTemporalConnection({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' }, DEFAULTS),
    ).toThrow(/not supported/);
  });

  it('passes gRPC metadata through (TEMPORAL_GRPC_META_<header>)', () => {
    const c = resolveTemporalConnection({ TEMPORAL_GRPC_META_TENANT: 'blue' }, DEFAULTS);
    expect(c.options()).toEqual({ address: '127.0.0.1:7233', metadata: { tenant: 'blue' } });
  });

  describe('a profile of a TOML file', () => {
    const toml = file(
      'temporal.toml',
      `
[profile.default]
address = "staging.temporal.internal:7233"
namespace = "staging"

[profile.prod]
address = "prod.a1b2c.tmprl.cloud:7233"
namespace = "prod.a1b2c"
api_key = "sk-prod-SECRET-2"
[profile.prod.tls]
server_name = "prod.a1b2c.tmprl.cloud"
[profile.prod.grpc_meta]
tenant = "red"
`,
    );

    it('is chosen by TEMPORAL_PROFILE from TEMPORAL_CONFIG_FILE', () => {
      const c = resolveTemporalConnection({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' }, DEFAULTS);
      expect(c).toMatchObject({
        address: 'prod.a1b2c.tmprl.cloud:7233',
        namespace: 'prod.a1b2c',
        profile: 'prod',
        auth: 'api-key',
        tls: true,
      });
      expect(c.options()).toEqual({
        address: 'prod.a1b2c.tmprl.cloud:7233',
        tls: { serverNameOverride: 'prod.a1b2c.tmprl.cloud' },
        apiKey: 'sk-prod-SECRET-2',
        metadata: { tenant: 'red' },
      });
      expect(describeTemporal(c)).not.toContain('SECRET-2');
    });

    it('is `default` without TEMPORAL_PROFILE, and the variables override it', () => {
      const c = resolveTemporalConnection({ TEMPORAL_CONFIG_FILE: toml }, DEFAULTS);
      expect(c).toMatchObject({
        address: 'staging.temporal.internal:7233',
        namespace: 'staging',
        profile: 'default',
      });
      const config = loadConfig({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_NAMESPACE: 'other' });
      expect(config.temporal).toMatchObject({
        address: 'staging.temporal.internal:7233',
        namespace: 'other',
      });
    });

    it('refuses a profile that is not there', () => {
      expect(() =>
        resolveTemporalConnection({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'nope' }, DEFAULTS),
      ).toThrow(/Profile 'nope' not found/);
    });

    it.skipIf(os.platform() !== 'linux')('is read from the user config dir, unless told not to', () => {
      const home = path.join(dir, 'home');
      file('home/.config/temporalio/temporal.toml', '[profile.default]\naddress = "from-home:7233"\n');
      expect(resolveTemporalConnection({ HOME: home }, DEFAULTS).address).toBe('from-home:7233');
      expect(resolveTemporalConnection({ HOME: home }, DEFAULTS, { configFile: false }).address).toBe(
        '127.0.0.1:7233',
      );
      // The dev server's and the tests' connection: never a profile.
      expect(localTemporal('127.0.0.1:9999').options()).toEqual({ address: '127.0.0.1:9999' });
    });
  });
});

describe('the TEMPORAL_* variables of the schema', () => {
  it('mark the API key and the client key secret', () => {
    const props = EnvSchema.properties as Record<string, { secret?: boolean }>;
    expect(props.TEMPORAL_API_KEY?.secret).toBe(true);
    expect(props.TEMPORAL_TLS_CLIENT_KEY_DATA?.secret).toBe(true);
  });

  it('refuse a TLS switch that is not a boolean (envconfig would read it as off)', () => {
    expect(() => parseEnv({ TEMPORAL_TLS: 'yes' })).toThrow('TEMPORAL_TLS must be one of true, false, 1, 0');
    expect(parseEnv({ TEMPORAL_TLS: 'true' }).TEMPORAL_TLS).toBe('true');
  });
});
