import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { JoinRequestCodec } from '@xmtp/convos-cli/utils/joinRequest';
import { describe, expect, it } from 'vitest';
import { publicKeyToAddress } from '../../../src/invite/index.js';
import { ethSigner } from '../src/xmtp/eth-signer.js';
import { joinRequestCodec, nodeSdkFactory } from '../src/xmtp/node-sdk.js';

describe('real XMTP client adapter (@xmtp/node-sdk 5.5.0)', () => {
  // No XMTP network is reachable on these machines: the adapter must load and fail fast and clearly.
  for (const env of ['dev', 'local'] as const) {
    it(`loads and rejects Client.create within seconds with no network (${env})`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'convos-sdk-'));
      const t0 = Date.now();
      const err = await nodeSdkFactory({ connectTimeoutMs: 10_000 })
        .create(
          {
            walletKey: new Uint8Array(32).fill(7),
            dbEncryptionKey: new Uint8Array(32).fill(9),
            dbPath: join(dir, 'x.db3'),
          },
          env,
        )
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(err).toBeInstanceOf(Error);
      expect(err?.message).toMatch(new RegExp(`^XMTP ${env}: `));
      // The error must not leak key material.
      expect(err?.message).not.toContain('0707070707');
      expect(Date.now() - t0).toBeLessThan(12_000);
    }, 20_000);
  }

  it('signs XMTP identity messages as an Ethereum personal_sign that recovers to the wallet address', () => {
    const key = new Uint8Array(32).fill(0x11);
    const s = ethSigner(key);
    expect(s.address).toBe('0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a');
    const msg = 'XMTP : Authenticate to inbox\n\nInbox ID: abc';
    const sig = s.signMessage(msg);
    expect(sig).toHaveLength(65);
    expect([27, 28]).toContain(sig[64]);
    const body = new TextEncoder().encode(msg);
    const digest = keccak_256(
      new Uint8Array([...new TextEncoder().encode(`\x19Ethereum Signed Message:\n${body.length}`), ...body]),
    );
    const recovered = secp256k1.recoverPublicKey(
      new Uint8Array([(sig[64] as number) - 27, ...sig.subarray(0, 64)]),
      digest,
      { prehash: false },
    );
    expect(publicKeyToAddress(secp256k1.Point.fromBytes(recovered).toBytes(false))).toBe(s.address);
  });

  it('encodes join requests exactly as the Convos CLI codec reads them, and reads what it writes', () => {
    const theirs = new JoinRequestCodec();
    const content = { inviteSlug: 'abc*def', profile: { name: 'Ada', memberKind: 'agent' } };
    const ours = joinRequestCodec.encode(content);
    expect(ours.type).toEqual(theirs.contentType);
    expect(ours.fallback).toBe('abc*def');
    expect(theirs.decode(ours as never)).toEqual(content);
    expect(joinRequestCodec.decode(theirs.encode(content) as never)).toEqual(content);
    expect(() => joinRequestCodec.decode({ content: new TextEncoder().encode('{"profile":{}}') })).toThrow(
      /inviteSlug/,
    );
  });
});
