/**
 * The search-attribute setup against a stand-in operator service: the one list, the Temporal Cloud refusal
 * (the `tcld` commands instead of a stack trace), a type conflict. Against a real server:
 * test/temporal-setup.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { describe, expect, it, vi } from 'vitest';
import {
  checkSearchAttributes,
  NamespaceSetupError,
  type OperatorService,
  registerSearchAttributes,
  SEARCH_ATTRIBUTES,
  tcldCommands,
  typeName,
} from './temporal-namespace';

/** A server error as the SDK surfaces it: a gRPC status code. */
const grpcError = (code: number, message: string) => Object.assign(new Error(message), { code });

function operator(
  existing: Record<string, number>,
  behaviour: { list?: Error; add?: Error } = {},
): OperatorService & { added: Array<Record<string, number>> } {
  const added: Array<Record<string, number>> = [];
  return {
    added,
    listSearchAttributes: vi.fn(async () => {
      if (behaviour.list) throw behaviour.list;
      return { customAttributes: { ...existing } };
    }),
    addSearchAttributes: vi.fn(async (req) => {
      if (behaviour.add) throw behaviour.add;
      const attrs = req.searchAttributes as Record<string, number>;
      added.push(attrs);
      Object.assign(existing, attrs);
      return {};
    }),
  } as unknown as OperatorService & { added: Array<Record<string, number>> };
}

const { IndexedValueType } = proto.temporal.api.enums.v1;
const KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const TEXT = IndexedValueType.INDEXED_VALUE_TYPE_TEXT;

describe('the search attributes', () => {
  it('are every key workflows/search-attributes.ts defines but the deprecated AgentName', () => {
    const source = fs.readFileSync(
      path.join(import.meta.dirname, '..', 'workflows', 'search-attributes.ts'),
      'utf8',
    );
    const defined = [...source.matchAll(/defineSearchAttributeKey\('(\w+)',\s*SearchAttributeType\.(\w+)\)/g)]
      .map((m) => ({ name: m[1], type: m[2] }))
      .filter((k) => k.name !== 'AgentName');
    expect(defined.length).toBeGreaterThan(0);
    expect(SEARCH_ATTRIBUTES).toEqual(defined);
    // An agent name is user data: no new namespace gets an attribute for it.
    expect(SEARCH_ATTRIBUTES.map((k) => k.name)).not.toContain('AgentName');
  });

  it('are spelled as the CLIs spell their types', () => {
    expect(typeName('KEYWORD')).toBe('Keyword');
    expect(typeName('KEYWORD_LIST')).toBe('KeywordList');
    expect(typeName('DATETIME')).toBe('Datetime');
  });
});

describe('registerSearchAttributes', () => {
  const wanted = [
    { name: 'InstanceStatus', type: 'KEYWORD' as const },
    { name: 'PoolName', type: 'KEYWORD' as const },
  ];

  it('adds only the missing ones, and nothing on the second run', async () => {
    const op = operator({ PoolName: KEYWORD });
    expect(await registerSearchAttributes(op, 'ns', wanted)).toEqual({
      added: [wanted[0]],
      present: [wanted[1]],
    });
    expect(op.added).toEqual([{ InstanceStatus: KEYWORD }]);
    expect(await registerSearchAttributes(op, 'ns', wanted)).toEqual({ added: [], present: wanted });
    expect(op.added).toHaveLength(1);
  });

  it('refuses one registered with another type, changing nothing', async () => {
    const op = operator({ InstanceStatus: TEXT });
    await expect(registerSearchAttributes(op, 'ns', wanted)).rejects.toThrow(
      /InstanceStatus is Text, the workflows need Keyword/,
    );
    expect(op.added).toEqual([]);
  });

  it('prints the tcld commands when the operator API is refused (Temporal Cloud, namespace API key)', async () => {
    for (const code of [7, 12]) {
      const op = operator({ PoolName: KEYWORD }, { add: grpcError(code, 'Request unauthorized.') });
      const err = await registerSearchAttributes(op, 'pool.a1b2c', wanted).catch((e) => e);
      expect(err).toBeInstanceOf(NamespaceSetupError);
      expect(err.message).toContain(
        '  tcld namespace search-attributes add --namespace pool.a1b2c --search-attribute InstanceStatus=Keyword',
      );
      // Only the missing one.
      expect(err.message).not.toContain('PoolName=Keyword');
    }
    // Listing refused too: every attribute.
    const op = operator({}, { list: grpcError(7, 'Request unauthorized.') });
    const err = await registerSearchAttributes(op, 'pool.a1b2c', wanted).catch((e) => e);
    expect(err).toBeInstanceOf(NamespaceSetupError);
    expect(err.message).toContain(tcldCommands('pool.a1b2c', wanted).join('\n  '));
  });

  it('lets other errors through', async () => {
    const op = operator({}, { add: grpcError(14, 'unavailable') });
    await expect(registerSearchAttributes(op, 'ns', wanted)).rejects.not.toBeInstanceOf(NamespaceSetupError);
  });
});

describe('checkSearchAttributes (worker start)', () => {
  it('refuses a namespace that lacks one, naming the setup command', async () => {
    const op = operator({ InstanceStatus: KEYWORD });
    await expect(checkSearchAttributes(op, 'ns', () => {})).rejects.toThrow(
      /lacks the search attributes .*run `npm run temporal:setup`/,
    );
  });

  it('passes a set-up namespace', async () => {
    const all = Object.fromEntries(
      SEARCH_ATTRIBUTES.map((a) => [
        a.name,
        IndexedValueType[`INDEXED_VALUE_TYPE_${a.type}` as keyof typeof IndexedValueType] as number,
      ]),
    );
    await expect(checkSearchAttributes(operator(all), 'ns', () => {})).resolves.toBeUndefined();
  });

  it('warns and goes on when listing is not permitted', async () => {
    const warn = vi.fn();
    const op = operator({}, { list: grpcError(7, 'Request unauthorized.') });
    await expect(checkSearchAttributes(op, 'ns', warn)).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('npm run temporal:setup'));
  });
});
