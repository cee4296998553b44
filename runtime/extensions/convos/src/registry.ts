import type { ConvosService } from './service.js';

/**
 * Process-wide home of the channel's services, keyed by state dir. OpenClaw may re-evaluate the plugin
 * module (config reload, registry replacement); module-level state would then fork into two XMTP
 * clients on one database. globalThis survives re-evaluation, so every module generation shares one
 * service per state dir. Start/stop are reference counted: an old generation's stop after a new
 * generation's start must not tear the transport down.
 */

interface Holder {
  service: ConvosService;
  refs: number;
  /** Serializes start/stop transitions of this service. */
  chain: Promise<unknown>;
}

const KEY = Symbol.for('convos-agents.convos-channel.registry');
type Registry = Map<string, Holder>;

function registry(): Registry {
  const g = globalThis as { [KEY]?: Registry };
  g[KEY] ??= new Map();
  return g[KEY];
}

export function findService(stateDir: string): ConvosService | undefined {
  return registry().get(stateDir)?.service;
}

export function getOrCreateService(stateDir: string, create: () => ConvosService): ConvosService {
  const r = registry();
  let h = r.get(stateDir);
  if (!h) {
    h = { service: create(), refs: 0, chain: Promise.resolve() };
    r.set(stateDir, h);
  }
  return h.service;
}

/** Takes a reference and makes sure the service is started. */
export function acquireService(stateDir: string, create: () => ConvosService): Promise<ConvosService> {
  const service = getOrCreateService(stateDir, create);
  const h = registry().get(stateDir) as Holder;
  h.refs++;
  const next = h.chain.then(() => service.start()).then(() => service);
  h.chain = next.catch(() => {});
  return next;
}

/** Drops a reference; the last one stops the service (its identities' clients and streams). */
export function releaseService(stateDir: string): Promise<void> {
  const h = registry().get(stateDir);
  if (!h) return Promise.resolve();
  h.refs = Math.max(0, h.refs - 1);
  const next = h.chain.then(async () => {
    if (h.refs === 0) await h.service.stop();
  });
  h.chain = next.catch(() => {});
  return next;
}

/** Tests only. */
export function resetRegistry(): void {
  registry().clear();
}
