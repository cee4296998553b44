/** The runtime client's deadlines: a runtime that never answers is given up on at the deadline, not later. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fetchHealth, postProvision } from './runtime-client';

let server: http.Server;
let url: string;
beforeAll(async () => {
  // `/slow/…` never answers; anything else answers at once.
  server = http.createServer((req, res) => {
    if (req.url?.startsWith('/slow/')) return;
    res.setHeader('content-type', 'application/json');
    if (req.url?.endsWith('/pool/health')) res.end(JSON.stringify({ ready: true }));
    else res.end(JSON.stringify({ status: 'created', conversationId: 'c1', joined: false }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

it('a health check past its deadline reports the runtime unreachable, timed out', async () => {
  const started = Date.now();
  const report = await fetchHealth(`${url}/slow`, 'token', 300);
  expect(report).toMatchObject({ reachable: false, ready: false, error: 'timed out after 300 ms' });
  expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  expect(Date.now() - started).toBeLessThan(3000);
  // An answered check is unaffected by the deadline it ran under.
  expect(await fetchHealth(url, 'token', 300)).toMatchObject({ reachable: true, ready: true });
});

it('a provision past its deadline fails retryable as unreachable, timed out', async () => {
  const request = { requestId: 'r1', agentName: 'A', instructions: 'be brief' };
  await expect(postProvision(`${url}/slow`, 'token', request, 300)).rejects.toMatchObject({
    type: 'RuntimeUnreachable',
    nonRetryable: false,
    message: 'runtime unreachable: timed out after 300 ms',
  });
  expect(await postProvision(url, 'token', request, 300)).toMatchObject({ status: 'created' });
});
