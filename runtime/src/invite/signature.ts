import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, concatBytes, hexToBytes } from './bytes.js';
import { InviteError } from './errors.js';

/**
 * Invite signatures: secp256k1 ECDSA over SHA-256(payload bytes) — no EIP-191 prefix — with the
 * creator's wallet key, encoded r(32) ‖ s(32) ‖ recoveryId(1). Verification recovers the signer,
 * so a verifier needs only the expected public key or address, never the private key.
 */

export const SIGNATURE_BYTES = 65;

export function walletKeyBytes(walletPrivateKey: Uint8Array | string): Uint8Array {
  const key =
    typeof walletPrivateKey === 'string'
      ? hexToBytes(walletPrivateKey, 'wallet private key')
      : walletPrivateKey;
  if (key.length !== 32 || !secp256k1.utils.isValidSecretKey(key)) {
    throw new InviteError('bad_argument', 'wallet private key must be a valid 32-byte secp256k1 key');
  }
  return key;
}

/** Uncompressed (0x04 ‖ X ‖ Y) public key of a wallet key. */
export function walletPublicKey(walletPrivateKey: Uint8Array | string): Uint8Array {
  return secp256k1.getPublicKey(walletKeyBytes(walletPrivateKey), false);
}

/** Ethereum address (lowercase 0x-hex) of an uncompressed public key. */
export function publicKeyToAddress(publicKey: Uint8Array): string {
  const uncompressed =
    publicKey.length === 65 ? publicKey : secp256k1.Point.fromBytes(publicKey).toBytes(false);
  return `0x${bytesToHex(keccak_256(uncompressed.subarray(1)).subarray(12))}`;
}

export function signPayload(payload: Uint8Array, walletPrivateKey: Uint8Array | string): Uint8Array {
  // RFC 6979 deterministic nonces: the same payload and key always give the same bytes (test vectors).
  const recovered = secp256k1.sign(sha256(payload), walletKeyBytes(walletPrivateKey), {
    prehash: false,
    format: 'recovered',
  });
  // noble's 'recovered' format puts the recovery byte first; Convos puts it last.
  return concatBytes(recovered.subarray(1, 65), recovered.subarray(0, 1));
}

/** The signer's uncompressed public key; throws InviteError('bad_signature') if none can be recovered. */
export function recoverSigner(payload: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== SIGNATURE_BYTES) {
    throw new InviteError(
      'bad_signature',
      `invite signature is ${signature.length} bytes, expected ${SIGNATURE_BYTES}`,
    );
  }
  let v = signature[64] as number;
  // Some signers emit Ethereum-style v (27/28); the recovery id is the same bit.
  if (v === 27 || v === 28) v -= 27;
  if (v !== 0 && v !== 1) throw new InviteError('bad_signature', `invite signature has recovery id ${v}`);
  try {
    const noble = concatBytes(Uint8Array.of(v), signature.subarray(0, 64));
    const recovered = secp256k1.recoverPublicKey(noble, sha256(payload), { prehash: false });
    return secp256k1.Point.fromBytes(recovered).toBytes(false);
  } catch (err) {
    throw new InviteError('bad_signature', 'invite signature does not recover a public key', { cause: err });
  }
}
