// An OpenAI-compatible stand-in model server. It streams SSE exactly as OpenClaw expects
// (`chat.completion.chunk` events, then `data: [DONE]`) and records every request so tests can
// check what the gateway sent (system prompt, user message).
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  model: string;
  stream: boolean;
  messages: Array<{ role: string; content: unknown }>;
  toolNames: string[];
}

export interface ModelServer {
  url: string; // base URL including /v1
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Flattens OpenAI message content (string or parts) to text. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === "object" && "text" in p ? String((p as { text: unknown }).text) : ""))
      .join("");
  }
  return "";
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startModelServer(reply: (lastUserText: string) => string): Promise<ModelServer> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer(async (req, res) => {
    const url = req.url ?? "";
    if (req.method === "GET" && url.endsWith("/models")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: [{ id: "stand-in", object: "model" }] }));
      return;
    }
    if (req.method !== "POST" || !url.endsWith("/chat/completions")) {
      res.writeHead(404).end();
      return;
    }
    const body = JSON.parse(await readBody(req)) as {
      model: string;
      stream?: boolean;
      messages: Array<{ role: string; content: unknown }>;
      tools?: Array<{ function?: { name?: string } }>;
    };
    const toolNames = (body.tools ?? []).map((t) => t.function?.name ?? "?");
    requests.push({ model: body.model, stream: body.stream === true, messages: body.messages, toolNames });
    const lastUser = [...body.messages].reverse().find((m) => m.role === "user");
    const text = reply(contentText(lastUser?.content));
    const id = `chatcmpl-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    if (body.stream !== true) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id,
          object: "chat.completion",
          created,
          model: body.model,
          choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.write(chunk({ role: "assistant", content: "" }, null));
    // Two content chunks, so the gateway really has to assemble a stream.
    const half = Math.ceil(text.length / 2);
    res.write(chunk({ content: text.slice(0, half) }, null));
    res.write(chunk({ content: text.slice(half) }, null));
    res.write(chunk({}, "stop"));
    res.write(
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })}\n\n`,
    );
    res.end("data: [DONE]\n\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
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
