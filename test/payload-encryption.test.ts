/**
 * Payload encryption end to end: a worker and an API with PAYLOAD_ENCRYPTION_KEY (the run's key) serve a
 * claim; the instance's history as Temporal stores it holds neither the agent name nor the instructions (not
 * in payloads, not in search attributes), and the claim's history reads in plaintext through the API's codec
 * endpoint: over HTTP, and with the real `temporal workflow show --codec-endpoint`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { instanceWorkflowId, poolWorkflowId } from '../contracts/workflow-ids';
import { findTemporalCli } from '../scripts/temporal-dev';
import { ENCRYPTED_ENCODING } from '../system/payload-codec';
import { type Stack, startStack } from './stack';
import { type ClaimBody, json, newKey, shared } from './support/helpers';
import { historyBytes, recordEncryptedPlaintexts } from './support/payload-histories';

const exec = promisify(execFile);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    shared({ targetIdle: 1, maxTotal: 4, env: { PAYLOAD_ENCRYPTION_KEY: inject('payloadEncryptionKey') } }),
  );
  await stack.waitFor('1 idle', async () => (await stack.counts()).idle === 1);
});
afterAll(() => stack?.stop());

/** The payloads of `temporal workflow show --output json` (proto3 JSON: base64 data): encodings and texts. */
function shownPayloads(output: string): { encodings: Set<string>; text: string } {
  const encodings = new Set<string>();
  const texts: string[] = [];
  const stack: unknown[] = [JSON.parse(output)];
  while (stack.length > 0) {
    const value = stack.pop();
    if (value === null || typeof value !== 'object') continue;
    const p = value as { metadata?: { encoding?: unknown }; data?: unknown };
    if (typeof p.metadata?.encoding === 'string') {
      encodings.add(Buffer.from(p.metadata.encoding, 'base64').toString('utf8'));
      if (typeof p.data === 'string') texts.push(Buffer.from(p.data, 'base64').toString('utf8'));
    }
    stack.push(...Object.values(value));
  }
  return { encodings, text: texts.join('\n') };
}

/** Every run of a workflow, as the bytes Temporal stores. */
async function storedHistory(temporal: Client, workflowId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const run of temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    parts.push(historyBytes(await temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory()));
  }
  return Buffer.concat(parts);
}

describe('payload encryption', () => {
  const tag = randomBytes(4).toString('hex');
  const agentName = `Zephyrine Codec ${tag}`;
  const instructions = `Answer only in haiku about codec-${tag}.`;
  let instanceId: string;

  beforeAll(async () => {
    // For the post-run check: these must be in no exported history in plaintext.
    recordEncryptedPlaintexts(agentName, instructions);
    const res = await stack.api(
      'POST',
      '/api/pool/claim',
      { agentName, instructions },
      { 'idempotency-key': newKey('codec') },
    );
    expect(res.status).toBe(200);
    const body = await json<ClaimBody>(res);
    expect(body.agentName).toBe(agentName);
    instanceId = body.instanceId;
    // The claimed instance's own state reads back through the codec (a Query: encrypted both ways).
    const detail = await json<{ agentName: string; status: string }>(
      await stack.api('GET', `/api/pool/instances/${instanceId}`),
    );
    expect(detail).toMatchObject({ agentName, status: 'claimed' });
  });

  it('stores no agent name or instructions in plaintext: every payload is encrypted, no search attribute holds them', async () => {
    const workflowId = instanceWorkflowId(instanceId);
    const stored = await storedHistory(stack.temporal, workflowId);
    expect(stored.length).toBeGreaterThan(1000);
    expect(stored.includes(agentName)).toBe(false);
    expect(stored.includes(instructions)).toBe(false);
    // The scan reads what it should: ids and the encrypted encoding are there.
    expect(stored.includes(instanceId)).toBe(true);
    expect(stored.includes(ENCRYPTED_ENCODING)).toBe(true);
    // Nor the pool's history.
    const pool = await storedHistory(stack.temporal, poolWorkflowId(stack.poolName));
    expect(pool.includes(agentName)).toBe(false);

    const description = await stack.temporal.workflow.getHandle(workflowId).describe();
    const attributes = JSON.stringify(description.typedSearchAttributes);
    expect(attributes).toContain('claimed');
    expect(attributes).not.toContain(agentName);
    expect(attributes).not.toContain('AgentName');
  });

  it('decodes the history through the codec endpoint (HTTP) to the plaintext the worker saw', async () => {
    const history = await stack.temporal.workflow.getHandle(instanceWorkflowId(instanceId)).fetchHistory();
    const payloads: Array<{ metadata: Record<string, string>; data: string }> = [];
    for (const event of history.events ?? []) {
      const input = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args;
      const activity = event.activityTaskScheduledEventAttributes?.input;
      for (const p of [...(input?.payloads ?? []), ...(activity?.payloads ?? [])]) {
        payloads.push({
          metadata: Object.fromEntries(
            Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
          ),
          data: Buffer.from(p.data ?? []).toString('base64'),
        });
      }
    }
    expect(payloads.length).toBeGreaterThan(0);
    const encoded = Buffer.concat(payloads.map((p) => Buffer.from(p.data, 'base64')));
    expect(encoded.includes(agentName)).toBe(false);

    const res = await stack.api('POST', '/api/codec/decode', { payloads });
    expect(res.status).toBe(200);
    const decoded = await json<{ payloads: Array<{ data: string }> }>(res);
    const plain = decoded.payloads.map((p) => Buffer.from(p.data, 'base64').toString('utf8')).join('\n');
    expect(plain).toContain(agentName);
    expect(plain).toContain(instructions);
  });

  it('temporal workflow show --codec-endpoint shows the plaintext with the API key, and only then', async () => {
    const cli = await findTemporalCli();
    const base = [
      'workflow',
      'show',
      '--address',
      inject('temporalAddress'),
      '--workflow-id',
      instanceWorkflowId(instanceId),
      '--output',
      'json',
    ];
    const run = async (extra: string[]) =>
      (await exec(cli, [...base, ...extra], { maxBuffer: 64 * 1024 * 1024 })).stdout;

    const without = await run([]);
    expect(without).toContain(instanceId);
    const encrypted = shownPayloads(without);
    expect(encrypted.encodings).toContain(ENCRYPTED_ENCODING);
    // (json/plain payloads remain: the search attributes' values, never encrypted and holding no user data.)
    expect(encrypted.text).not.toContain(agentName);

    const codecArgs = ['--codec-endpoint', `${stack.apiUrl}/api/codec`];
    const withCodec = await run([...codecArgs, '--codec-auth', `Bearer ${stack.apiKey}`]);
    const decoded = shownPayloads(withCodec);
    expect(decoded.encodings).not.toContain(ENCRYPTED_ENCODING);
    expect(decoded.text).toContain(agentName);
    expect(decoded.text).toContain(instructions);

    // A wrong key: the codec endpoint refuses, and the CLI shows nothing decrypted.
    const wrong = await run([...codecArgs, '--codec-auth', 'Bearer wrong']).catch(
      (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`,
    );
    expect(wrong).not.toContain(agentName);
    if (wrong.trimStart().startsWith('{')) expect(shownPayloads(wrong).text).not.toContain(agentName);
  });
});
