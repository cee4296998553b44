// The no-model endpoint's wire format: what OpenClaw's openai-completions provider reads (a model list,
// SSE `chat.completion.chunk`s then `data: [DONE]`, or one JSON completion), and only the message that
// says how to configure a model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_MODEL_ID, NO_MODEL_MESSAGE, type NoModelServer, startNoModelServer } from '../src/no-model.ts';

let server: NoModelServer;
beforeAll(async () => {
  server = await startNoModelServer();
});
afterAll(() => server.close());

const ask = (body: unknown) =>
  fetch(`${server.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('no-model endpoint', () => {
  it('listens on loopback only and lists its one model', async () => {
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    expect(server.url).toMatch(/\/v1$/);
    const res = await fetch(`${server.url}/models`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'list', data: [{ id: NO_MODEL_ID, object: 'model' }] });
  });

  it('streams the message as chat.completion.chunk events, a stop, usage, then [DONE]', async () => {
    const res = await ask({ model: 'no-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    for (const c of chunks) {
      expect(c).toMatchObject({ object: 'chat.completion.chunk', model: 'no-model' });
      expect(c.id).toBe(chunks[0].id);
    }
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(content).toBe(NO_MODEL_MESSAGE);
    expect(chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean)).toEqual(['stop']);
    expect(chunks.at(-1).choices).toEqual([]);
    expect(chunks.at(-1).usage).toBeDefined();
  });

  it('answers one JSON completion when not streaming, whatever was asked', async () => {
    const res = await ask({ model: 'x', messages: [{ role: 'user', content: 'what is 2+2?' }] });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'x',
      choices: [
        { index: 0, message: { role: 'assistant', content: NO_MODEL_MESSAGE }, finish_reason: 'stop' },
      ],
    });
  });

  it('says how to set a model, and 4xx on anything else', async () => {
    expect(NO_MODEL_MESSAGE).toMatch(/No language model is configured/);
    expect(NO_MODEL_MESSAGE).toMatch(/OPENROUTER_API_KEY/);
    expect(NO_MODEL_MESSAGE).toMatch(/MODEL_BASE_URL/);
    expect((await fetch(`${server.url}/embeddings`, { method: 'POST' })).status).toBe(404);
    const bad = await fetch(`${server.url}/chat/completions`, { method: 'POST', body: '{nope' });
    expect(bad.status).toBe(400);
  });
});
