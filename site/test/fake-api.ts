// A stand-in for the pool API that answers like the real one (same routes, shapes and status codes) and,
// above all, records every request the site makes to it. A request the real API would have to refuse (a
// claim outside the shared contract, an invalid slug or id in a path, a control character anywhere, a
// missing operator key, a malformed visitor id) is a violation: the site should have stopped it.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  agentNameProblem,
  controlCharacterProblem,
  isIdempotencyKey,
  isTemplateSlug,
  joinUrlProblem,
} from '../../contracts/claim';

export interface ApiRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakeApi {
  url: string;
  apiKey: string;
  requests: ApiRequest[];
  violations: string[];
  close(): Promise<void>;
}

const INSTANCE_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const TEMPLATE = {
  slug: 'trip-planner',
  name: 'Trip Planner',
  description: 'Plans trips.',
  category: 'Travel',
  emoji: '🧳',
  skills: ['planning', 'web-search'],
  skillAvailability: [
    { skill: 'planning', available: true, reason: null },
    { skill: 'web-search', available: false, reason: 'web search is not set up for these agents' },
  ],
  instructions: 'Plan trips.',
};
const COUNTS = {
  starting: 0,
  idle: 2,
  claiming: 0,
  pending_acceptance: 0,
  claimed: 1,
  crashed: 0,
  failed: 1,
  destroying: 0,
};
const INFO = {
  environment: 'test',
  version: '0.0.0',
  computeProvider: 'local',
  xmtpEnv: 'off',
  model: 'm',
  targetIdle: 2,
  maxTotal: 20,
  providers: { openrouter: false, agentmail: false, telnyx: false },
};
const AGENT = {
  id: 'i-1',
  status: 'failed',
  agentName: 'Bob',
  templateSlug: 'trip-planner',
  conversationId: null,
  inviteUrl: null,
  createdAt: '2025-01-01T00:00:00.000Z',
  claimedAt: null,
  lastError: 'provision failed',
};

const HELD = { inUse: 1, pooled: 2, other: 0 };
const COSTS = {
  credits: {
    available: true,
    totalUsd: 100,
    usedUsd: 2,
    remainingUsd: 98,
    fetchedAt: '2025-01-01T00:00:00.000Z',
  },
  keys: HELD,
  inboxes: HELD,
  numbers: { ...HELD, spare: 0 },
};

export async function startFakeApi(apiKey = 'fake-operator-key'): Promise<FakeApi> {
  const requests: ApiRequest[] = [];
  const violations: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    const path = safeDecode(rawPath);
    const method = req.method ?? 'GET';
    requests.push({ method, path: path ?? rawPath, headers: req.headers, body });
    const violation = (why: string) => violations.push(`${method} ${JSON.stringify(rawPath)}: ${why}`);
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(data));
    };
    const error = (status: number, code: string, message: string) => send(status, { error: message, code });

    if (path === null) {
      violation('malformed percent-encoding');
      return error(400, 'BAD_PATH', 'bad path');
    }
    for (const [name, value] of Object.entries(req.headers)) {
      for (const v of Array.isArray(value) ? value : [value ?? '']) {
        const problem = controlCharacterProblem(v, false);
        if (problem) violation(`header ${name} ${problem}`);
      }
    }
    if (controlCharacterProblem(path, false)) violation(`path ${controlCharacterProblem(path, false)}`);
    const authed = req.headers.authorization === `Bearer ${apiKey}`;
    const needAuth = () => {
      if (authed) return true;
      violation('no operator key');
      error(401, 'UNAUTHORIZED', 'Missing or invalid API key');
      return false;
    };
    let json: unknown;
    if (body) {
      try {
        json = JSON.parse(body);
      } catch {
        violation('body is not JSON');
        return error(400, 'BAD_JSON', 'bad json');
      }
    }
    const obj = (json ?? {}) as Record<string, unknown>;
    const int = (v: unknown, min: number, max: number) =>
      Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

    const templateRoute = method === 'GET' ? /^\/api\/pool\/templates\/(.*)$/.exec(path) : null;
    const instanceRoute = /^\/api\/pool\/(instances|crashed)\/([^/]*)(\/retry|\/llm-limit)?$/.exec(path);
    if (method === 'GET' && path === '/api/pool/counts') return send(200, COUNTS);
    if (method === 'GET' && path === '/api/pool/info') return send(200, INFO);
    if (method === 'GET' && path === '/api/pool/templates') {
      const { instructions: _, ...summary } = TEMPLATE;
      return send(200, [summary]);
    }
    if (templateRoute) {
      if (!isTemplateSlug(templateRoute[1])) violation('template slug outside the contract');
      return templateRoute[1] === TEMPLATE.slug
        ? send(200, TEMPLATE)
        : error(404, 'NOT_FOUND', 'Unknown template');
    }
    if (method === 'GET' && path === '/api/pool/costs') {
      if (!needAuth()) return;
      return send(200, COSTS);
    }
    if (method === 'GET' && path === '/api/pool/agents') {
      if (!needAuth()) return;
      return send(200, { claimed: [], crashed: [], idle: [], starting: [], failed: [AGENT] });
    }
    if (instanceRoute) {
      if (!needAuth()) return;
      const [, kind, id = '', sub] = instanceRoute;
      const retry = sub === '/retry';
      const limit = sub === '/llm-limit';
      if (!INSTANCE_ID_RE.test(id)) violation('instance id outside the safe alphabet');
      const known = id === AGENT.id;
      const ok =
        (method === 'GET' && kind === 'instances' && !sub) ||
        (method === 'DELETE' && !sub) ||
        (method === 'POST' && kind === 'instances' && retry) ||
        (method === 'PUT' && kind === 'instances' && limit);
      if (!ok) {
        violation('no such route');
        return error(404, 'NOT_FOUND', 'Route not found');
      }
      if (limit) {
        const cap = obj.monthlyLimitUsd;
        if (typeof cap !== 'number' || !(cap > 0) || cap > 100_000 || Object.keys(obj).length !== 1)
          violation(`monthlyLimitUsd outside (0, 100000]: ${body}`);
      }
      if (!known) return error(404, 'NOT_FOUND', 'Unknown instance');
      if (limit) return send(200, { instanceId: id, monthlyLimitUsd: obj.monthlyLimitUsd });
      if (method === 'GET') return send(200, { ...AGENT, resources: [], events: [], usage: null });
      return send(202, { ok: true });
    }
    if (method === 'POST' && (path === '/api/pool/replenish' || path === '/api/pool/drain')) {
      if (!needAuth()) return;
      if (!int(obj.count, 1, 20) || Object.keys(obj).length !== 1) violation(`count outside 1..20: ${body}`);
      return send(202, { ok: true, started: [], draining: [], counts: COUNTS });
    }
    if (method === 'PUT' && path === '/api/pool/target') {
      if (!needAuth()) return;
      if (!int(obj.targetIdle, 0, 1000) || (obj.maxTotal !== undefined && !int(obj.maxTotal, 1, 10_000))) {
        violation(`target outside the contract: ${body}`);
      }
      return send(200, { targetIdle: obj.targetIdle, maxTotal: obj.maxTotal ?? 20 });
    }
    if (method === 'POST' && path === '/api/pool/reconcile') {
      if (!needAuth()) return;
      return send(202, { ok: true });
    }
    if (method === 'POST' && path === '/api/pool/claim') {
      if (!needAuth()) return;
      const key = req.headers['idempotency-key'];
      if (!isIdempotencyKey(key)) violation(`Idempotency-Key outside the contract: ${JSON.stringify(key)}`);
      const id = req.headers['x-client-id'];
      const anonymous = req.headers['x-client-anonymous'];
      if (id !== undefined && !/^site-[0-9a-f]{32}$/.test(String(id)))
        violation(`X-Client-Id is not opaque: ${id}`);
      if (
        (id === undefined) !== (anonymous === undefined) ||
        (anonymous !== undefined && anonymous !== 'true')
      ) {
        violation(`X-Client-Id/X-Client-Anonymous do not go together: ${id} / ${anonymous}`);
      }
      for (const k of Object.keys(obj)) {
        if (!['agentName', 'templateSlug', 'joinUrl', 'maxWaitMs', 'instructions'].includes(k))
          violation(`unknown field ${k}`);
      }
      const problems = [
        obj.agentName !== undefined ? agentNameProblem(obj.agentName) : null,
        obj.joinUrl !== undefined ? joinUrlProblem(obj.joinUrl) : null,
        obj.templateSlug !== undefined && !isTemplateSlug(obj.templateSlug)
          ? 'templateSlug outside the contract'
          : null,
        obj.maxWaitMs !== undefined && !int(obj.maxWaitMs, 0, 60_000) ? 'maxWaitMs outside 0..60000' : null,
      ].filter(Boolean);
      if (problems.length) {
        violation(`claim outside the contract: ${problems.join('; ')}`);
        return error(400, 'BAD_REQUEST', String(problems[0]));
      }
      if (obj.templateSlug !== undefined && obj.templateSlug !== TEMPLATE.slug) {
        return error(400, 'UNKNOWN_TEMPLATE', 'Unknown templateSlug');
      }
      // Half of the claims find the pool empty, like a busy pool; the others get an agent.
      if (String(key).length % 2 === 0) {
        return send(503, { error: 'No idle instance', code: 'POOL_EMPTY' }, { 'retry-after': '5' });
      }
      return send(200, {
        instanceId: 'i-1',
        agentName: obj.agentName ?? 'Assistant',
        conversationId: null,
        inviteUrl: null,
        joined: false,
        warm: true,
        chatUrl: 'http://127.0.0.1:1/chat/i-1',
      });
    }
    violation('no such API route');
    return error(404, 'NOT_FOUND', 'Route not found');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    violations,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}
