/**
 * Runtime stand-in, a development tool: a small server that speaks the instance control-server contract of
 * docs/runtime.md exactly (`GET /pool/health`, `POST /pool/provision` idempotent by requestId, 409 for a
 * different second request), with a configurable boot delay and fault injection, but runs no agent. The
 * end-to-end tests and the benchmarks run on it; the local provider runs it with `LOCAL_RUNTIME=standin`.
 *
 * `POST /pool/inbound` (an inbound email or SMS, contracts/runtime.ts `InboundRequest`): idempotent by
 * `eventId`; every event taken is recorded once in the instance's `inbound` (its conversation, as far as a
 * test can see), repeats answer `duplicate: true` and are only counted.
 *
 * Two modes:
 * - single instance (PORT, INSTANCE_ID, INSTANCE_TOKEN set): routes at `/pool/*`, as the local provider runs it;
 * - shared (`STANDIN_SHARED=1`): one process serves many instances at `/i/<id>/pool/*`, registered through
 *   `/_standin/instances` (`compute-provider.ts` drives it), so tests and benchmarks with hundreds of
 *   instances stay cheap.
 *
 * Runs on plain Node 24 (`node tools/runtime-standin/server.ts`, type stripping): no imports outside node:*.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StandinFaults {
  /** Milliseconds after registration before /pool/health reports ready. */
  bootDelayMs?: number;
  /** Never becomes ready. */
  neverReady?: boolean;
  /** Health answers 503 (e.g. a crashed runtime). */
  down?: boolean;
  /** Provision answers 500 this many times before succeeding (-1: always). */
  provisionFailures?: number;
  /** Extra latency of provision, ms. */
  provisionDelayMs?: number;
  /** Provision answers 400, as the real runtime does for a request it refuses (before recording anything). */
  refuseProvision?: boolean;
  /** `/pool/inbound` answers 503 this many times before taking events (-1: always). */
  inboundFailures?: number;
  /** `/pool/inbound` takes the event, then waits this long before answering (a worker may die meanwhile). */
  inboundDelayMs?: number;
  /**
   * A join (`joinUrl`) answers `waiting_for_acceptance`, as the real runtime does while the conversation's
   * creator is away; `POST /_standin/instances/<id>/accept` then reports the acceptance to the pool.
   */
  joinWaitsForAcceptance?: boolean;
}

/** An inbound event as the conversation got it (the fields of contracts/runtime.ts `InboundRequest`). */
export interface StandinInbound {
  eventId: string;
  channel: string;
  from: string;
  subject: string | null;
  text: string;
  receivedAt: string;
}

interface InstanceRecord {
  id: string;
  token: string;
  /** POOL_API_URL as the instance got it: where `accept` reports to. */
  poolApiUrl: string | null;
  registeredAt: number;
  faults: StandinFaults;
  provisioned: { requestId: string; fingerprint: string; result: Record<string, unknown> } | null;
  provisionCalls: number;
  /** Inbound events in the order the conversation got them, each once. */
  inbound: StandinInbound[];
  /** Every `/pool/inbound` request, repeats included. */
  inboundCalls: number;
  /** When the last message went through the instance's conversation (ISO), as the runtime's health reports. */
  lastActivityAt: string | null;
  /** When `/pool/health` was asked (ms since the epoch), the last `HEALTH_CHECKS_KEPT`: how checks are paced. */
  healthCheckedAt: number[];
}

const HEALTH_CHECKS_KEPT = 100;

interface StandinState {
  /** Like the real runtime: with XMTP off, provisioning answers a chat link instead of an invite. */
  xmtpEnv: string;
  instances: Map<string, InstanceRecord>;
  /** Every secret this stand-in was given or made (tokens, chat links): tests check none leaked anywhere. */
  seenSecrets: Set<string>;
  defaults: StandinFaults;
}

function send(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return {};
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function authorized(req: http.IncomingMessage, token: string) {
  const given = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function health(st: StandinState, inst: InstanceRecord) {
  const booted = Date.now() - inst.registeredAt >= (inst.faults.bootDelayMs ?? 0);
  const ready = booted && !inst.faults.neverReady;
  return {
    ready,
    gateway: ready ? 'ready' : 'starting',
    channel: st.xmtpEnv === 'off' ? 'disabled' : ready ? 'ready' : 'starting',
    version: 'standin',
    lastActivityAt: inst.lastActivityAt,
  };
}

async function provision(
  st: StandinState,
  inst: InstanceRecord,
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  let body: Record<string, unknown>;
  try {
    body = (await readJson(req)) as Record<string, unknown>;
  } catch {
    return send(res, 400, { error: 'body is not JSON', code: 'BAD_JSON' });
  }
  const { requestId, agentName, instructions, joinUrl } = body ?? {};
  if (
    typeof requestId !== 'string' ||
    !requestId ||
    typeof agentName !== 'string' ||
    typeof instructions !== 'string'
  ) {
    return send(res, 400, {
      error: 'requestId, agentName and instructions are required',
      code: 'BAD_REQUEST',
    });
  }
  if (joinUrl !== undefined && joinUrl !== null && typeof joinUrl !== 'string') {
    return send(res, 400, { error: 'joinUrl must be a string', code: 'BAD_REQUEST' });
  }
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([requestId, agentName, instructions, joinUrl ?? null]))
    .digest('hex');
  // Idempotent by requestId: the same request gets the first result; a different one is refused.
  const answerIfProvisioned = () => {
    const done = inst.provisioned;
    if (!done) return false;
    if (done.requestId === requestId && done.fingerprint === fingerprint) send(res, 200, done.result);
    else
      send(res, 409, {
        error: 'instance already provisioned for another request',
        code: 'ALREADY_PROVISIONED',
      });
    return true;
  };
  if (answerIfProvisioned()) return;
  if (inst.faults.refuseProvision) {
    return send(res, 400, { error: 'injected refusal of the request', code: 'invalid_request' });
  }
  if (typeof joinUrl === 'string') st.seenSecrets.add(joinUrl);
  if (inst.faults.provisionDelayMs) await new Promise((r) => setTimeout(r, inst.faults.provisionDelayMs));
  if (answerIfProvisioned()) return; // a concurrent request finished meanwhile
  inst.provisionCalls++;
  const failures = inst.faults.provisionFailures ?? 0;
  if (failures === -1 || inst.provisionCalls <= failures) {
    return send(res, 500, { error: 'injected provisioning failure', code: 'INJECTED' });
  }
  const conversationId = randomUUID().replaceAll('-', '');
  const joining = typeof joinUrl === 'string';
  const waits = joining && inst.faults.joinWaitsForAcceptance === true;
  const joined = joining && !waits;
  const result =
    st.xmtpEnv === 'off'
      ? {
          conversationId: null,
          inviteUrl: null,
          joined: false,
          status: 'created',
          chatUrl: `http://127.0.0.1/standin/chat/${inst.id}/${randomUUID()}`,
        }
      : waits
        ? { conversationId: null, inviteUrl: null, joined: false, status: 'waiting_for_acceptance' }
        : {
            conversationId,
            inviteUrl: joined ? null : `https://dev.convos.org/v2?i=standin${conversationId}`,
            joined,
            status: joined ? 'joined' : 'created',
          };
  if (result.chatUrl) st.seenSecrets.add(result.chatUrl);
  if (result.inviteUrl) st.seenSecrets.add(result.inviteUrl);
  inst.provisioned = { requestId, fingerprint, result };
  send(res, 200, result);
}

async function inbound(inst: InstanceRecord, req: http.IncomingMessage, res: http.ServerResponse) {
  let body: Record<string, unknown>;
  try {
    body = (await readJson(req)) as Record<string, unknown>;
  } catch {
    return send(res, 400, { error: 'body is not JSON', code: 'invalid_json' });
  }
  inst.inboundCalls++;
  const { eventId, channel, from, subject, text, receivedAt } = body ?? {};
  if (
    typeof eventId !== 'string' ||
    !/^[A-Za-z0-9._:-]{1,200}$/.test(eventId) ||
    (channel !== 'email' && channel !== 'sms') ||
    typeof from !== 'string' ||
    typeof text !== 'string' ||
    typeof receivedAt !== 'string' ||
    (subject !== null && typeof subject !== 'string')
  ) {
    return send(res, 400, { error: 'not an inbound event', code: 'invalid_request' });
  }
  const failures = inst.faults.inboundFailures ?? 0;
  if (failures === -1 || inst.inboundCalls <= failures) {
    return send(res, 503, { error: 'injected inbound failure', code: 'not_ready' });
  }
  const duplicate = inst.inbound.some((e) => e.eventId === eventId);
  if (!duplicate) inst.inbound.push({ eventId, channel, from, subject: subject ?? null, text, receivedAt });
  if (!duplicate) inst.lastActivityAt = new Date().toISOString();
  if (inst.faults.inboundDelayMs) await new Promise((r) => setTimeout(r, inst.faults.inboundDelayMs));
  send(res, 200, { accepted: true, duplicate });
}

async function route(
  st: StandinState,
  inst: InstanceRecord | undefined,
  rest: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  if (!inst) return send(res, 404, { error: 'unknown instance', code: 'NOT_FOUND' });
  if (rest !== '/pool/health' && rest !== '/pool/provision' && rest !== '/pool/inbound')
    return send(res, 404, { error: 'not found', code: 'NOT_FOUND' });
  if (!authorized(req, inst.token)) return send(res, 401, { error: 'bad token', code: 'UNAUTHORIZED' });
  if (rest === '/pool/health' && req.method === 'GET') {
    inst.healthCheckedAt.push(Date.now());
    if (inst.healthCheckedAt.length > HEALTH_CHECKS_KEPT) inst.healthCheckedAt.shift();
    if (inst.faults.down) return send(res, 503, { error: 'down', code: 'DOWN' });
    return send(res, 200, health(st, inst));
  }
  if (rest === '/pool/provision' && req.method === 'POST') return provision(st, inst, req, res);
  if (rest === '/pool/inbound' && req.method === 'POST') return inbound(inst, req, res);
  send(res, 405, { error: 'method not allowed', code: 'METHOD_NOT_ALLOWED' });
}

/** Admin API of the shared mode: register, inspect, fault and remove instances. */
async function admin(st: StandinState, path: string, req: http.IncomingMessage, res: http.ServerResponse) {
  const match = /^\/_standin\/instances(?:\/([A-Za-z0-9-]+))?(\/faults|\/activity|\/accept)?$/.exec(path);
  if (path === '/_standin/secrets' && req.method === 'GET') return send(res, 200, [...st.seenSecrets]);
  if (path === '/_standin/defaults' && req.method === 'PUT') {
    st.defaults = (await readJson(req)) as StandinFaults;
    return send(res, 200, st.defaults);
  }
  if (!match) return send(res, 404, { error: 'not found', code: 'NOT_FOUND' });
  const id = match[1];
  if (!id && req.method === 'GET') {
    return send(
      res,
      200,
      [...st.instances.values()].map((i) => ({
        id: i.id,
        provisioned: i.provisioned,
        provisionCalls: i.provisionCalls,
        inbound: i.inbound,
        inboundCalls: i.inboundCalls,
        healthCheckedAt: i.healthCheckedAt,
      })),
    );
  }
  if (!id && req.method === 'POST') {
    const body = (await readJson(req)) as {
      instanceId: string;
      token: string;
      poolApiUrl?: string;
      faults?: StandinFaults;
    };
    st.seenSecrets.add(body.token);
    const existing = st.instances.get(body.instanceId);
    if (!existing) {
      st.instances.set(body.instanceId, {
        id: body.instanceId,
        token: body.token,
        poolApiUrl: body.poolApiUrl ?? null,
        registeredAt: Date.now(),
        faults: { ...st.defaults, ...body.faults },
        provisioned: null,
        provisionCalls: 0,
        inbound: [],
        inboundCalls: 0,
        lastActivityAt: null,
        healthCheckedAt: [],
      });
    } else {
      existing.token = body.token;
    }
    return send(res, 200, { ok: true });
  }
  if (id && match[2] === '/activity' && req.method === 'POST') {
    const inst = st.instances.get(id);
    if (!inst) return send(res, 404, { error: 'unknown instance', code: 'NOT_FOUND' });
    inst.lastActivityAt = new Date().toISOString();
    return send(res, 200, { lastActivityAt: inst.lastActivityAt });
  }
  if (id && match[2] === '/accept' && req.method === 'POST') {
    // The creator let the agent in: what the real runtime then tells the pool (runtime/src/pool-reports.ts).
    const inst = st.instances.get(id);
    // The body may name the pool (a test stack whose API listens on a port chosen after the instances started).
    const { poolApiUrl = inst?.poolApiUrl } = (await readJson(req)) as { poolApiUrl?: string };
    if (!inst?.provisioned || !poolApiUrl)
      return send(res, 409, { error: 'not provisioned, or no pool to report to', code: 'NOT_PROVISIONED' });
    const conversationId = randomUUID().replaceAll('-', '');
    inst.provisioned.result = { ...inst.provisioned.result, conversationId, joined: true, status: 'joined' };
    const pool = await fetch(`${poolApiUrl}/api/pool/self/conversation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${inst.id}:${inst.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requestId: inst.provisioned.requestId, conversationId }),
    });
    return send(res, 200, { conversationId, poolStatus: pool.status });
  }
  if (id && match[2] === '/faults' && req.method === 'PUT') {
    const inst = st.instances.get(id);
    if (!inst) return send(res, 404, { error: 'unknown instance', code: 'NOT_FOUND' });
    inst.faults = (await readJson(req)) as StandinFaults;
    return send(res, 200, inst.faults);
  }
  if (id && req.method === 'DELETE') {
    st.instances.delete(id);
    return send(res, 200, { ok: true });
  }
  send(res, 405, { error: 'method not allowed', code: 'METHOD_NOT_ALLOWED' });
}

export function createStandinServer(opts: {
  shared: boolean;
  /**
   * `faultsFile`: a JSON file of StandinFaults read before every request when it exists (single mode: a test
   * slows or breaks a runtime the local provider started, e.g. `<STATE_DIR>/standin-faults.json`).
   */
  single?: { id: string; token: string; poolApiUrl?: string; faults: StandinFaults; faultsFile?: string };
  xmtpEnv?: string;
}) {
  const st: StandinState = {
    xmtpEnv: opts.xmtpEnv ?? process.env.XMTP_ENV ?? 'off',
    instances: new Map(),
    seenSecrets: new Set(),
    defaults: {},
  };
  if (opts.single) {
    st.instances.set(opts.single.id, {
      id: opts.single.id,
      token: opts.single.token,
      poolApiUrl: opts.single.poolApiUrl ?? null,
      registeredAt: Date.now(),
      faults: opts.single.faults,
      provisioned: null,
      provisionCalls: 0,
      inbound: [],
      inboundCalls: 0,
      lastActivityAt: null,
      healthCheckedAt: [],
    });
  }
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const done = (p: Promise<void> | void) =>
      Promise.resolve(p).catch((err: unknown) => send(res, 400, { error: String(err), code: 'BAD_REQUEST' }));
    const faultsFile = opts.single?.faultsFile;
    const inst = opts.single ? st.instances.get(opts.single.id) : undefined;
    if (faultsFile && inst && fs.existsSync(faultsFile)) {
      try {
        inst.faults = {
          ...opts.single!.faults,
          ...(JSON.parse(fs.readFileSync(faultsFile, 'utf8')) as object),
        };
      } catch {
        // Half-written: keep the faults read last time.
      }
    }
    if (opts.shared) {
      if (url.pathname.startsWith('/_standin/')) return done(admin(st, url.pathname, req, res));
      const m = /^\/i\/([A-Za-z0-9-]+)(\/.*)$/.exec(url.pathname);
      if (!m) return send(res, 404, { error: 'not found', code: 'NOT_FOUND' });
      return done(route(st, st.instances.get(m[1]!), m[2]!, req, res));
    }
    return done(
      route(st, opts.single ? st.instances.get(opts.single.id) : undefined, url.pathname, req, res),
    );
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const shared = process.env.STANDIN_SHARED === '1';
  const server = createStandinServer({
    shared,
    single: shared
      ? undefined
      : {
          id: process.env.INSTANCE_ID ?? 'standin',
          token: process.env.INSTANCE_TOKEN ?? '',
          ...(process.env.POOL_API_URL ? { poolApiUrl: process.env.POOL_API_URL } : {}),
          faults: { bootDelayMs: Number(process.env.STANDIN_BOOT_DELAY_MS ?? 0) },
          ...(process.env.STATE_DIR
            ? { faultsFile: path.join(process.env.STATE_DIR, 'standin-faults.json') }
            : {}),
        },
  });
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    const address = server.address();
    console.log(
      `runtime stand-in listening on ${typeof address === 'object' && address ? address.port : '?'}`,
    );
  });
  process.on('SIGTERM', () => process.exit(0));
}
