/**
 * One way to reach Temporal, for the worker, the API and every script: Temporal's own environment
 * configuration (`@temporalio/envconfig`, the same settings the `temporal` CLI reads). A profile of a TOML file
 * (TEMPORAL_CONFIG_FILE, else the user's `~/.config/temporalio/temporal.toml`; TEMPORAL_PROFILE, else
 * `default`), overridden by the TEMPORAL_* variables (address, namespace, API key, TLS, client certificate and
 * key, server CA, server name, gRPC metadata), and our defaults (127.0.0.1:7233, namespace `default`) where
 * neither says. An API key turns TLS on. The API key and the client key never reach a log line: they are only
 * in `options()`, which serialising or logging the configuration does not call.
 */
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import {
  type ClientConfigProfile,
  loadClientConfig,
  loadClientConfigProfile,
  toClientOptions,
} from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { dataConverterOf } from '../system/payload-codec';
import type { Config, Env } from './env';

/** What both `Connection` (client) and `NativeConnection` (worker) take. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

/** Where and how to reach Temporal; everything but `options()` is safe to print. */
export interface TemporalConnection {
  address: string;
  namespace: string;
  tls: boolean;
  /** How the client proves who it is. */
  auth: 'none' | 'api-key' | 'mtls';
  /** The TOML profile in use (null: none, variables and defaults only). */
  profile: string | null;
  /** The options, secrets included (reads the certificate files; throws naming the one it cannot read). */
  options(): TemporalConnectionOptions;
}

const GRPC_META = 'TEMPORAL_GRPC_META_';

/** The variables envconfig reads, as it reads them: our rule is that unset and empty mean the same. */
function envconfigVars(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    // An empty TEMPORAL_GRPC_META_X removes header x from the profile (envconfig's rule); else empty = unset.
    if (value.trim() === '' && !name.startsWith(GRPC_META)) continue;
    out[name] = value;
  }
  return out;
}

const truthy = (value: string | undefined) => value === '1' || value === 'true';

/**
 * The connection `env` describes. `defaults` apply where neither the variables nor the profile name an
 * address or a namespace; `configFile: false` ignores TOML files (a dev server started by `npm start`).
 * Throws on a profile that is asked for and missing, and on settings the TypeScript SDK cannot honour.
 */
export function resolveTemporalConnection(
  env: Env,
  defaults: { address: string; namespace: string },
  opts: { configFile?: boolean } = {},
): TemporalConnection {
  const vars = envconfigVars(env);
  const disableFile = opts.configFile === false;
  if (truthy(vars.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION))
    throw new Error(
      "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by Temporal's TypeScript SDK (the server's certificate is always verified): set TEMPORAL_TLS_SERVER_CA_CERT_PATH to its CA and TEMPORAL_TLS_SERVER_NAME to the name in it",
    );
  let profile: ClientConfigProfile;
  let profileName: string | null = null;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: vars, disableFile });
    if (!disableFile) {
      const name = vars.TEMPORAL_PROFILE ?? 'default';
      if (loadClientConfig({ overrideEnvVars: vars }).profiles[name]) profileName = name;
    }
  } catch (err) {
    throw new Error(`Temporal connection settings: ${(err as Error).message}`);
  }
  const tls = profile.tls;
  if (Boolean(tls?.clientCert) !== Boolean(tls?.clientKey))
    throw new Error(
      'Temporal mTLS needs both a client certificate and its key (TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH, or their _DATA forms, or client_cert_* and client_key_* of the profile)',
    );
  const tlsOn = tls ? tls.disabled !== true : profile.apiKey !== undefined;
  const address = profile.address ?? defaults.address;
  return {
    address,
    namespace: profile.namespace ?? defaults.namespace,
    tls: tlsOn,
    auth: tls?.clientCert && tlsOn ? 'mtls' : profile.apiKey !== undefined ? 'api-key' : 'none',
    profile: profileName,
    options() {
      let tlsOption: NativeConnectionOptions['tls'];
      try {
        tlsOption = toClientOptions(profile).connectionOptions.tls;
      } catch (err) {
        throw new Error(`Temporal TLS settings: ${(err as Error).message}`);
      }
      const metadata = profile.grpcMeta ?? {};
      return {
        address,
        ...(tlsOption !== undefined && tlsOption !== null ? { tls: tlsOption } : {}),
        ...(profile.apiKey !== undefined ? { apiKey: profile.apiKey } : {}),
        ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
      };
    },
  };
}

/** A plain local server (the dev server, the tests' server): no profile, no TLS, whatever the environment says. */
export function localTemporal(address: string, namespace = 'default'): TemporalConnection {
  return resolveTemporalConnection({}, { address, namespace }, { configFile: false });
}

/** For log lines and banners: address, namespace, TLS and how it authenticates; never a secret. */
export function describeTemporal(c: TemporalConnection): string {
  const auth = { none: '', 'api-key': ', API key', mtls: ', client certificate' }[c.auth];
  const profile = c.profile ? `, profile ${c.profile}` : '';
  return `${c.address} (namespace ${c.namespace}, TLS ${c.tls ? 'on' : 'off'}${auth}${profile})`;
}

/** A client connection (the API, the scripts, the activities' client). */
export function connectTemporal(
  c: TemporalConnection,
  extra: Omit<ConnectionOptions, keyof TemporalConnectionOptions> = {},
): Promise<Connection> {
  return Connection.connect({ ...c.options(), ...extra });
}

export async function connectClient(config: Pick<Config, 'temporal' | 'payloadEncryption'>): Promise<Client> {
  const connection = await connectTemporal(config.temporal.connection);
  // Payload encryption (PAYLOAD_ENCRYPTION_KEY): the one place every client gets its codec.
  const dataConverter = dataConverterOf(config);
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    ...(dataConverter ? { dataConverter } : {}),
  });
}
