/**
 * The wallet adapter: addresses derived and checksummed exactly as Ethereum does (known vectors), fresh
 * keys on every create, nothing held remotely.
 */
import { describe, expect, it } from 'vitest';
import { addressFromPrivateKey, toChecksumAddress, WalletKeys } from '../../activities/providers/wallet';

describe('wallet', () => {
  it('derives the known address of private key 1', () => {
    const one = `0x${'0'.repeat(63)}1`;
    expect(addressFromPrivateKey(one)).toBe('0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
  });

  it('checksums addresses like the EIP-55 examples', () => {
    for (const address of [
      '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
      '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
      '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
      '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
    ]) {
      expect(toChecksumAddress(address.toLowerCase())).toBe(address);
      expect(toChecksumAddress(address.toUpperCase().replace('0X', '0x'))).toBe(address);
    }
    expect(() => toChecksumAddress('0x1234')).toThrow();
  });

  it('creates a fresh key whose address is the ref, and holds nothing remotely', async () => {
    const wallet = new WalletKeys();
    const ctx = {
      instanceId: 'i1',
      poolName: 'p',
      name: 'convos-p-i1',
      idempotencyKey: 'instance-i1:wallet',
    };
    const a = await wallet.create();
    const b = await wallet.create();
    expect(a.secret?.env).toBe('WALLET_PRIVATE_KEY');
    expect(a.secret?.value).toMatch(/^0x[0-9a-f]{64}$/);
    expect(a.ref).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(addressFromPrivateKey(a.secret!.value)).toBe(a.ref);
    expect(a.metadata).toEqual({ address: a.ref });
    expect(a.env).toEqual({ WALLET_ADDRESS: a.ref });
    // The non-secret parts never carry the key.
    expect(JSON.stringify({ ...a, secret: undefined })).not.toContain(a.secret!.value.slice(2));
    expect(b.secret?.value).not.toBe(a.secret?.value);
    expect(b.ref).not.toBe(a.ref);
    await expect(wallet.destroy(ctx, a.ref)).resolves.toBeUndefined();
    expect(await wallet.list('p')).toEqual([]);
    expect(wallet.kind).toBe('wallet');
  });
});
