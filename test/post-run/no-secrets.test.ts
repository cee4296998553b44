/**
 * No secret of the test run (API keys, secrets keys, instance tokens, chat links, provider keys and the
 * per-instance keys they issued, wallet keys) appears in any workflow history (payloads, search
 * attributes, failures), in the dev server's log, or in the worker and API logs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const artifacts = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');

it('finds no secret value in any history of the run', () => {
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

  const haystacks = [
    ...histories.map((f) => ({ name: f, bytes: fs.readFileSync(path.join(artifacts, 'histories', f)) })),
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
