/**
 * Per-instance Ethereum wallet, generated locally: a random secp256k1 key and its EIP-55 address. There is
 * no remote resource, so nothing to look up on retry: the activity layer stores the key encrypted and only
 * calls create when the instance has no wallet yet; deleting that stored secret is what destroys it.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { CreatedResource, HeldResource, ResourceContext, ResourceProvider } from './types';

/** EIP-55 mixed-case checksum of a 20-byte hex address (with or without 0x, any case). */
export function toChecksumAddress(address: string): string {
  const hex = address.replace(/^0x/i, '').toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(hex)) throw new Error('not a 20-byte hex address');
  const hash = bytesToHex(keccak_256(new TextEncoder().encode(hex)));
  let out = '0x';
  for (let i = 0; i < hex.length; i++) {
    const c = hex[i]!;
    out += Number.parseInt(hash[i]!, 16) >= 8 ? c.toUpperCase() : c;
  }
  return out;
}

/** The address of a secret key: the last 20 bytes of keccak-256 over the uncompressed public key's X‖Y. */
export function addressFromPrivateKey(privateKey: Uint8Array | string): string {
  const key = typeof privateKey === 'string' ? hexToBytes(privateKey.replace(/^0x/i, '')) : privateKey;
  const publicKey = secp256k1.getPublicKey(key, false); // 0x04 ‖ X ‖ Y
  return toChecksumAddress(bytesToHex(keccak_256(publicKey.subarray(1)).subarray(12)));
}

export class WalletKeys implements ResourceProvider {
  readonly kind = 'wallet' as const;
  readonly name = 'wallet';

  async create(): Promise<CreatedResource> {
    const privateKey = secp256k1.utils.randomSecretKey();
    const address = addressFromPrivateKey(privateKey);
    return {
      ref: address,
      metadata: { address },
      env: { WALLET_ADDRESS: address },
      secret: { env: 'WALLET_PRIVATE_KEY', value: `0x${bytesToHex(privateKey)}` },
    };
  }

  /** Nothing is held remotely: the secret store deleting the key is the release. */
  async destroy(_ctx?: ResourceContext, _ref?: string | null): Promise<void> {}

  async list(_poolName?: string): Promise<HeldResource[]> {
    return [];
  }
}
