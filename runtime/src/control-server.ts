// The control server the pool talks to (docs/runtime.md): /pool/health, /pool/provision, /pool/self-destruct,
// plus the local chat page. Every answer is JSON `{ error, code }` on failure; no stack traces, no secrets.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ChatEvents } from './chat-events.ts';
import {
  CHAT_SESSION_PATTERN,
  type ChatDeps,
  ChatQueue,
  chatPageHtml,
  chatUser,
  sendChatMessage,
  validateChatMessage,
} from './chat-page.ts';
import { HttpError } from './http-errors.ts';
import { isLoopback, readJson, refuseConnect, requestPath } from './http-request.ts';
import { type InboundRequest, validateInboundRequest } from './inbound.ts';
import { ProvisionConflict, type ProvisionRequest, type ProvisionResult } from './provision-store.ts';
import { safeEqual } from './secrets.ts';
import { validateProvisionRequest } from './validate.ts';

export type { RuntimeHealth as Health } from '../../contracts/runtime.ts';

import type { RuntimeHealth as Health } from '../../contracts/runtime.ts';

export interface ControlServerDeps {
  instanceToken: string;
  health(): Health;
  provision(request: ProvisionRequest): Promise<ProvisionResult>;
  selfDestruct(): Promise<{ status: number; body: unknown }>;
  /** An inbound email or SMS (POST /pool/inbound): recorded durably, deduplicated by eventId. */
  inbound?: (request: InboundRequest) => { accepted: true; duplicate: boolean };
  chatSecret: string;
  chat: ChatDeps;
  /** A chat page message was received, or its reply sent (feeds Health.lastActivityAt). */
  recordActivity?: () => void;
  /** The chat page's stream of messages the agent sends on its own (GET /chat/<secret>/events). */
  chatEvents?: ChatEvents;
  /** Bounds the chat page's messages in flight (default: MAX_PENDING_CHAT_MESSAGES[_PER_SESSION]). */
  chatQueue?: ChatQueue;
  log?: (line: string) => void;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(data);
}

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer (.+)$/.exec(header);
  return match !== null && safeEqual(match[1] as string, token);
}

export function createControlServer(deps: ControlServerDeps): Server {
  const chatQueue = deps.chatQueue ?? new ChatQueue();
  let refusedChats = 0;
  let lastRefusalLog = 0;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = requestPath(req);
    const method = req.method ?? 'GET';

    if (path.startsWith('/pool/')) {
      const routes: Record<string, string> = {
        '/pool/health': 'GET',
        '/pool/provision': 'POST',
        '/pool/self-destruct': 'POST',
        '/pool/inbound': 'POST',
      };
      const allowed = routes[path];
      if (!allowed) throw new HttpError(404, 'not_found', 'no such endpoint');
      if (path === '/pool/self-destruct') {
        // Only something on this machine (the agent's own tooling, an operator shell) may ask.
        if (!isLoopback(req))
          throw new HttpError(403, 'loopback_only', 'self-destruct is accepted from loopback only');
      } else if (!authorized(req, deps.instanceToken)) {
        res.setHeader('www-authenticate', 'Bearer');
        throw new HttpError(401, 'unauthorized', 'missing or wrong instance token');
      }
      if (method !== allowed) {
        res.setHeader('allow', allowed);
        throw new HttpError(405, 'method_not_allowed', `use ${allowed}`);
      }
      if (path === '/pool/health') return send(res, 200, deps.health());
      if (path === '/pool/inbound') {
        if (!deps.inbound) throw new HttpError(404, 'not_found', 'no such endpoint');
        const parsed = validateInboundRequest(await readJson(req));
        if (typeof parsed === 'string') throw new HttpError(400, 'invalid_request', parsed);
        return send(res, 200, deps.inbound(parsed));
      }
      if (path === '/pool/provision') {
        const parsed = validateProvisionRequest(await readJson(req));
        if (typeof parsed === 'string') throw new HttpError(400, 'invalid_request', parsed);
        return send(res, 200, await deps.provision(parsed));
      }
      const outcome = await deps.selfDestruct();
      return send(res, outcome.status, outcome.body);
    }

    // The chat page: the secret path is the credential, compared in constant time.
    if (path.startsWith('/chat/')) {
      // `/chat/<secret>`, `/chat/<secret>/` (the page), `/chat/<secret>/messages` and `…/events`; nothing deeper.
      const parts = path.slice('/chat/'.length).split('/');
      const [secret = '', sub = ''] = parts;
      if (!safeEqual(secret, deps.chatSecret) || parts.length > 2)
        throw new HttpError(404, 'not_found', 'no such endpoint');
      if (sub === '' && method === 'GET') {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
          'content-security-policy':
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        });
        res.end(chatPageHtml(deps.chat.agentName()));
        return;
      }
      if (sub === 'events' && method === 'GET' && deps.chatEvents) {
        // EventSource cannot send headers: the secret path is the credential, the session the stream.
        const session = new URL(req.url ?? '/', 'http://x').searchParams.get('session') ?? '';
        if (!new RegExp(CHAT_SESSION_PATTERN).test(session))
          throw new HttpError(400, 'invalid_request', 'session must be 8-64 letters, digits or dashes');
        if (!deps.chatEvents.subscribe(session, res)) {
          res.setHeader('retry-after', '30');
          throw new HttpError(429, 'too_many_streams', 'too many pages are open on this chat');
        }
        return;
      }
      if (sub === 'messages' && method === 'POST') {
        const parsed = validateChatMessage(await readJson(req));
        if (typeof parsed === 'string') throw new HttpError(400, 'invalid_request', parsed);
        if (deps.health().gateway !== 'ready')
          throw new HttpError(503, 'not_ready', 'the agent is starting; try again shortly');
        if (!chatQueue.tryEnter(parsed.session)) {
          // Logged at most every 10 s, with a count and never the message.
          refusedChats += 1;
          if (Date.now() - lastRefusalLog > 10_000) {
            deps.log?.(
              `[runtime] chat: refused ${refusedChats} message(s): too many waiting for the agent (${chatQueue.pending} in flight)`,
            );
            refusedChats = 0;
            lastRefusalLog = Date.now();
          }
          res.setHeader('retry-after', '5');
          throw new HttpError(
            429,
            'too_many_pending',
            'too many messages are waiting for the agent; send again once it has answered',
          );
        }
        deps.recordActivity?.();
        try {
          const reply = await sendChatMessage(deps.chat, chatUser(parsed.session), parsed.message);
          deps.recordActivity?.();
          return send(res, 200, { reply });
        } catch (err) {
          throw new HttpError(502, 'agent_error', `the agent did not answer: ${(err as Error).message}`);
        } finally {
          chatQueue.leave(parsed.session);
        }
      }
      throw new HttpError(404, 'not_found', 'no such endpoint');
    }
    throw new HttpError(404, 'not_found', 'no such endpoint');
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message, code: err.code });
      if (err instanceof ProvisionConflict) return send(res, 409, { error: err.message, code: err.code });
      deps.log?.(
        `[runtime] ${req.method} ${req.url?.startsWith('/chat/') ? '/chat/…' : req.url} failed: ${(err as Error).message}`,
      );
      if (!res.headersSent) send(res, 500, { error: 'internal error', code: 'internal' });
      else res.end();
    });
  });
  server.on('connect', refuseConnect);
  return server;
}
