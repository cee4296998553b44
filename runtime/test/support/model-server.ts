// An OpenAI-compatible stand-in model server. It streams SSE exactly as OpenClaw expects
// (`chat.completion.chunk` events, then `data: [DONE]`) and records every request so tests can
// check what the gateway sent (system prompt, user message). A reply can also be a tool call, streamed
// as OpenAI does (`delta.tool_calls`, `finish_reason: "tool_calls"`).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  model: string;
  stream: boolean;
  messages: Array<{ role: string; content: unknown }>;
  toolNames: string[];
}

/** A reply that asks the gateway to run one tool; the next request then ends with its `tool` message. */
export interface ToolCallReply {
  toolCall: { name: string; arguments: Record<string, unknown> };
}

/** What the reply function sees: the last user text, and the last tool result when the turn ends with one. */
export type ReplyFn = (lastUserText: string, lastToolResult: string | null) => string | ToolCallReply;

export interface ModelServer {
  url: string; // base URL including /v1
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Flattens OpenAI message content (string or parts) to text. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && 'text' in p ? String((p as { text: unknown }).text) : ''))
      .join('');
  }
  return '';
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startModelServer(reply: ReplyFn): Promise<ModelServer> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer(async (req, res) => {
    const url = req.url ?? '';
    if (req.method === 'GET' && url.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'stand-in', object: 'model' }] }));
      return;
    }
    if (req.method !== 'POST' || !url.endsWith('/chat/completions')) {
      res.writeHead(404).end();
      return;
    }
    const body = JSON.parse(await readBody(req)) as {
      model: string;
      stream?: boolean;
      messages: Array<{ role: string; content: unknown }>;
      tools?: Array<{ function?: { name?: string } }>;
    };
    const toolNames = (body.tools ?? []).map((t) => t.function?.name ?? '?');
    requests.push({ model: body.model, stream: body.stream === true, messages: body.messages, toolNames });
    const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
    const last = body.messages.at(-1);
    const answer = reply(
      contentText(lastUser?.content),
      last?.role === 'tool' ? contentText(last.content) : null,
    );
    const id = `chatcmpl-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    if (typeof answer !== 'string') {
      // Tool calls are streamed only (OpenClaw always sends stream: true).
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (delta: object, finish: string | null) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      const args = JSON.stringify(answer.toolCall.arguments);
      const half = Math.ceil(args.length / 2);
      const callId = `call_${requests.length}`;
      res.write(
        chunk(
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                index: 0,
                id: callId,
                type: 'function',
                function: { name: answer.toolCall.name, arguments: '' },
              },
            ],
          },
          null,
        ),
      );
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(0, half) } }] }, null));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(half) } }] }, null));
      res.write(chunk({}, 'tool_calls'));
      res.end('data: [DONE]\n\n');
      return;
    }
    const text = answer;
    if (body.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.write(chunk({ role: 'assistant', content: '' }, null));
    // Two content chunks, so the gateway really has to assemble a stream.
    const half = Math.ceil(text.length / 2);
    res.write(chunk({ content: text.slice(0, half) }, null));
    res.write(chunk({ content: text.slice(half) }, null));
    res.write(chunk({}, 'stop'));
    res.write(
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })}\n\n`,
    );
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
