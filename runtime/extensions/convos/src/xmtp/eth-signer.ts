import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { publicKeyToAddress } from '../../../../src/invite/index.js';

/**
 * An Ethereum EOA signer for XMTP identity registration: personal_sign (EIP-191) with a raw wallet
 * key, as viem/ethers produce it (r ‖ s ‖ v with v = 27/28). Kept separate so the key handling is
 * small and testable; the key never leaves this closure.
 */

export interface EthSigner {
  address: string;
  signMessage(message: string): Uint8Array;
}

export function ethSigner(walletKey: Uint8Array): EthSigner {
  const address = publicKeyToAddress(secp256k1.getPublicKey(walletKey, false));
  return {
    address,
    signMessage(message: string): Uint8Array {
      const body = new TextEncoder().encode(message);
      const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${body.length}`);
      const digest = keccak_256(new Uint8Array([...prefix, ...body]));
      const rec = secp256k1.sign(digest, walletKey, { prehash: false, format: 'recovered' });
      const out = new Uint8Array(65);
      out.set(rec.subarray(1, 65), 0);
      out[64] = (rec[0] as number) + 27;
      return out;
    },
  };
}
