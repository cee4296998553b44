/**
 * The pool's local model discovery: which loopback server it picks (first in order that lists a model),
 * what it ignores (no answer, empty list, not a model list, too slow), and what every instance then gets.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/env';
import { localModelServer, localRuntime, runtimeEnvironment } from './index';
import { describeModel, discoverModelServer, LOCAL_MODEL_SERVERS } from './model-discovery';

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A loopback server answering GET /v1/models with `body` (after `delayMs`); its base URL. */
async function serve(body: unknown, delayMs = 0): Promise<string> {
  const server = createServer((req, res) => {
    setTimeout(() => {
      if (req.url !== '/v1/models') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    }, delayMs);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

const list = (...ids: string[]) => ({ object: 'list', data: ids.map((id) => ({ id, object: 'model' })) });

describe('local model discovery', () => {
  it('probes Ollama, LM Studio and llama.cpp server on loopback, in that order', () => {
    expect(LOCAL_MODEL_SERVERS.map((c) => c.baseUrl)).toEqual([
      'http://127.0.0.1:11434/v1',
      'http://127.0.0.1:1234/v1',
      'http://127.0.0.1:8080/v1',
    ]);
  });

  it('picks the first candidate that answers with a model list, skipping silent, empty, foreign and slow ones', async () => {
    const candidates = [
      { name: 'closed', baseUrl: await closedPort() },
      { name: 'empty', baseUrl: await serve(list()) },
      { name: 'html', baseUrl: await serve('<html>hello</html>') },
      { name: 'slow', baseUrl: await serve(list('late'), 2_000) },
      { name: 'good', baseUrl: await serve(list('llama3.2:latest', 'qwen')) },
      { name: 'later', baseUrl: await serve(list('other')) },
    ];
    const started = Date.now();
    const found = await discoverModelServer(candidates, 300);
    expect(found).toMatchObject({ name: 'good', models: ['llama3.2:latest', 'qwen'] });
    // All at once: one timeout, not one per candidate.
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(await discoverModelServer(candidates.slice(0, 4), 300)).toBeNull();
  });

  it('hands every instance the server found as MODEL_BASE_URL, with its first model unless MODEL is set', async () => {
    const config = loadConfig({});
    const found = { name: 'Ollama', baseUrl: 'http://127.0.0.1:11434/v1', models: ['llama3.2:latest'] };
    const env = runtimeEnvironment(config, {}, found);
    expect(env).toMatchObject({ MODEL_BASE_URL: found.baseUrl, MODEL: 'llama3.2:latest' });
    expect(describeModel(env, found)).toBe('llama3.2:latest on Ollama at http://127.0.0.1:11434/v1');
    expect(runtimeEnvironment(loadConfig({ MODEL: 'qwen' }), { MODEL: 'qwen' }, found).MODEL).toBe('qwen');
    // Nothing found: no model at all (the instances say how to set one).
    const none = runtimeEnvironment(config, {}, null);
    expect(none.MODEL_BASE_URL).toBeUndefined();
    expect(none.OPENROUTER_API_KEY).toBeUndefined();
    expect(describeModel(none, null)).toBe('none');
  });

  it('probes only for local compute with no model configured', async () => {
    let probes = 0;
    const probe = async () => {
      probes++;
      return null;
    };
    await localModelServer(loadConfig({}), {}, probe);
    expect(probes).toBe(1);
    for (const env of [
      { OPENROUTER_API_KEY: 'sk-or-x' },
      { MODEL_BASE_URL: 'http://127.0.0.1:9/v1' },
      { OPENROUTER_PROVISIONING_KEY: 'sk-or-prov' },
    ]) {
      await localModelServer(loadConfig(env), env, probe);
    }
    expect(probes).toBe(1);
  });

  it('runs OpenClaw locally by default; the stand-in only when asked for', () => {
    expect(localRuntime({}).cwd).toMatch(/runtime$/);
    expect(localRuntime({ LOCAL_RUNTIME: 'standin' }).command.join(' ')).toMatch(/runtime-standin/);
  });
});
