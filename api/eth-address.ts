/**
 * EIP-55 (https://eips.ethereum.org/EIPS/eip-55): a mixed-case 0x address carries a checksum in the case of
 * its letters. An all-lower or all-upper address carries none; a mixed-case one whose case is wrong is a
 * mistyped address, refused before any money moves to it.
 */
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/** False only for a mixed-case address whose letters' case disagrees with its EIP-55 checksum. */
export function checksumHolds(address: string): boolean {
  const hex = address.slice(2);
  if (hex === hex.toLowerCase() || hex === hex.toUpperCase()) return true;
  const hash = bytesToHex(keccak_256(new TextEncoder().encode(hex.toLowerCase())));
  for (let i = 0; i < hex.length; i++) {
    const c = hex[i] as string;
    if (!/[a-fA-F]/.test(c)) continue;
    const upper = Number.parseInt(hash[i] as string, 16) >= 8;
    if (upper !== (c === c.toUpperCase())) return false;
  }
  return true;
}
