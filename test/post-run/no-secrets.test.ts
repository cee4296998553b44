/**
 * No secret of the test run (API keys, secrets keys, the payload key, instance tokens, chat links, provider
 * keys and the per-instance keys they issued, wallet keys) appears in any workflow history (payloads, search
 * attributes, failures), in the dev server's log, or in the worker and API logs.
 *
 * Histories are scanned twice: as Temporal stores them, and with every encrypted payload decrypted (the run's
 * payload key): a secret must not be in a payload even where encryption would hide it, or a codec bug (or a
 * deployment without PAYLOAD_ENCRYPTION_KEY) would leak it. And what stacks with payload encryption on sent
 * (agent names, instructions) must be in no stored history in plaintext, only in the decrypted ones.
 */
import fs from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { expect, it } from 'vitest';
import {
  decodeHistory,
  historyBytes,
  recordedEncryptedPlaintexts,
  runCodec,
} from '../support/payload-histories';

// @temporalio/proto is CommonJS: take the namespace from its default export.
const { temporal } = proto;

const artifacts = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');

it('finds no secret value in any history of the run, stored or decrypted', async () => {
  const secrets = new Set<string>();
  for (const file of fs.readdirSync(path.join(artifacts, 'secrets'))) {
    for (const value of JSON.parse(
      fs.readFileSync(path.join(artifacts, 'secrets', file), 'utf8'),
    ) as string[]) {
      if (value.length >= 16) secrets.add(value);
    }
  }
  const histories = fs.readdirSync(path.join(artifacts, 'histories')).filter((f) => f.endsWith('.pb'));
  expect(secrets.size).toBeGreaterThan(20);
  expect(histories.length).toBeGreaterThan(50);

  const codec = runCodec();
  const stored = histories.map((f) => ({
    name: f,
    bytes: fs.readFileSync(path.join(artifacts, 'histories', f)),
  }));
  const decrypted = await Promise.all(
    stored.map(async ({ name, bytes }) => ({
      name: `${name} (decrypted)`,
      bytes: historyBytes(await decodeHistory(temporal.api.history.v1.History.decode(bytes), codec)),
    })),
  );
  const haystacks = [
    ...stored,
    ...decrypted,
    { name: 'temporal-dev.log', bytes: fs.readFileSync(path.join(artifacts, 'temporal-dev.log')) },
    // Worker and API logs of every test process (activity failures are logged with their messages).
    ...fs
      .readdirSync(path.join(artifacts, 'logs'))
      .map((f) => ({ name: f, bytes: fs.readFileSync(path.join(artifacts, 'logs', f)) })),
  ];
  // The scan reads what it should: instance ids (not secret) do show up in the histories.
  const anInstance = histories.find((f) => f.startsWith('instance-'))!;
  const instanceId = anInstance.split('__')[0]!.replace('instance-', '');
  expect(haystacks.some((h) => h.bytes.includes(instanceId))).toBe(true);

  const leaks: string[] = [];
  for (const { name, bytes } of haystacks) {
    for (const secret of secrets)
      if (bytes.includes(secret)) leaks.push(`${name} contains ${secret.slice(0, 6)}…`);
  }
  expect(leaks).toEqual([]);
});

it('finds what encrypting stacks sent in no stored history, and in the decrypted ones', async () => {
  const plaintexts = recordedEncryptedPlaintexts();
  // The payload-encryption suite records its agent names and instructions; without them this proves nothing.
  expect(plaintexts.length).toBeGreaterThan(0);
  const codec = runCodec();
  const files = fs.readdirSync(path.join(artifacts, 'histories')).filter((f) => f.endsWith('.pb'));
  const exposed: string[] = [];
  const seenDecrypted = new Set<string>();
  for (const file of files) {
    const bytes = fs.readFileSync(path.join(artifacts, 'histories', file));
    const plain = historyBytes(await decodeHistory(temporal.api.history.v1.History.decode(bytes), codec));
    for (const value of plaintexts) {
      if (bytes.includes(value)) exposed.push(`${file} holds ${JSON.stringify(value)} in plaintext`);
      if (plain.includes(value)) seenDecrypted.add(value);
    }
  }
  expect(exposed).toEqual([]);
  // The scan reads what it should: every recorded value is there once decrypted.
  expect([...plaintexts].filter((v) => !seenDecrypted.has(v))).toEqual([]);
});
