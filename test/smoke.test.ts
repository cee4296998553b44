import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Stack, startStack } from './stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    temporalAddress: inject('temporalAddress'),
    databaseUrl: inject('databaseUrl'),
    workflowBundlePath: inject('workflowBundlePath'),
    targetIdle: 2,
  });
});
afterAll(() => stack?.stop());

describe('smoke', () => {
  it('fills the pool and claims', async () => {
    await stack.waitFor('2 idle', async () => (await stack.counts()).idle === 2);
    const res = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName: 'Smoke' },
      { 'idempotency-key': 'smoke-1' },
    );
    const body = (await res.json()) as { instanceId: string; agentName: string; chatUrl: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.agentName).toBe('Smoke');
    expect(body.chatUrl).toMatch(/^http/);

    // The audit trail holds every transition in order, `claiming` included (written with `claimed`).
    const detail = (await (await stack.api('GET', `/api/pool/instances/${body.instanceId}`)).json()) as {
      status: string;
      events: Array<{ from: string | null; to: string; actor: string }>;
    };
    expect(detail.status).toBe('claimed');
    expect(detail.events.map((e) => `${e.from}→${e.to}`).reverse()).toEqual([
      'null→starting',
      'starting→idle',
      'idle→claiming',
      'claiming→claimed',
    ]);
  });
});
