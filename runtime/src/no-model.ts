// The model of an instance that has none configured: a tiny OpenAI-compatible server on loopback whose
// only answer is how to configure one. The gateway is pointed at it like at any other model server, so
// the instance is a real agent in every other respect (chat page, channel, provisioning, health) and every
// reply says plainly that no model is configured — never a made-up answer.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const NO_MODEL_ID = 'no-model';

export const NO_MODEL_MESSAGE =
  'No language model is configured for this agent. Set OPENROUTER_API_KEY (or MODEL_BASE_URL for any ' +
  'OpenAI-compatible server) and restart `npm start`.';

export interface NoModelServer {
  /** Base URL including /v1, as an OpenAI-compatible provider expects. */
  url: string;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024 * 1024;

async function readJson(req: IncomingMessage): Promise<{ model?: unknown; stream?: unknown } | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return null;
    chunks.push(c as Buffer);
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return body && typeof body === 'object' ? (body as { model?: unknown; stream?: unknown }) : null;
  } catch {
    return null;
  }
}

let sequence = 0;

/** Answers one chat completion: streamed as `chat.completion.chunk` events then `data: [DONE]`, or one JSON. */
export function completion(model: string, stream: boolean): { contentType: string; body: string } {
  const id = `chatcmpl-nomodel-${++sequence}`;
  const created = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  if (!stream) {
    return {
      contentType: 'application/json',
      body: JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          { index: 0, message: { role: 'assistant', content: NO_MODEL_MESSAGE }, finish_reason: 'stop' },
        ],
        usage,
      }),
    };
  }
  const event = (choices: unknown[], extra: object = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`;
  return {
    contentType: 'text/event-stream',
    body:
      event([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]) +
      event([{ index: 0, delta: { content: NO_MODEL_MESSAGE }, finish_reason: null }]) +
      event([{ index: 0, delta: {}, finish_reason: 'stop' }]) +
      event([], { usage }) +
      'data: [DONE]\n\n',
  };
}

export function createNoModelServer(): Server {
  return createServer(async (req, res) => {
    const url = (req.url ?? '').split('?')[0] ?? '';
    if (req.method === 'GET' && url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ object: 'list', data: [{ id: NO_MODEL_ID, object: 'model', owned_by: 'convos' }] }),
      );
      return;
    }
    if (req.method !== 'POST' || url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    const body = await readJson(req);
    if (!body) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'invalid JSON body', type: 'invalid_request_error' } }));
      return;
    }
    const model = typeof body.model === 'string' ? body.model : NO_MODEL_ID;
    const answer = completion(model, body.stream === true);
    res.writeHead(200, { 'content-type': answer.contentType, 'cache-control': 'no-cache' });
    res.end(answer.body);
  });
}

/** Starts the no-model server on a free loopback port. */
export async function startNoModelServer(): Promise<NoModelServer> {
  const server = createNoModelServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
