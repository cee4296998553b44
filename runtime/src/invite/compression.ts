import { deflateSync, inflateRawSync, inflateSync } from 'node:zlib';
import { concatBytes } from './bytes.js';
import { InviteError } from './errors.js';

/**
 * Invite byte compression. Two forms exist in the wild and both are decoded:
 *   0x1F ‖ uint32 BE original length ‖ zlib (or raw deflate) body   — iOS and the Convos CLI
 *   0x78 ‖ …                                                         — a bare zlib stream (an older SDK)
 * An uncompressed SignedInvite starts with 0x0A (field 1, length-delimited), so the first byte is
 * unambiguous. We emit only uncompressed or the 0x1F form.
 */

export const COMPRESSION_MARKER = 0x1f;
const ZLIB_FIRST_BYTE = 0x78;
/** Invites are a few hundred bytes; refuse anything that inflates past this (zip-bomb guard). */
export const MAX_INFLATED_BYTES = 64 * 1024;
/** Below this, deflate overhead wins (same threshold as iOS and the CLI). */
const MIN_COMPRESS_BYTES = 100;

export type CompressionForm = 'none' | 'marker' | 'zlib';

function inflate(body: Uint8Array): Uint8Array {
  const opts = { maxOutputLength: MAX_INFLATED_BYTES };
  try {
    // zlib streams start with 0x78; anything else can only be a raw deflate body.
    return new Uint8Array(body[0] === ZLIB_FIRST_BYTE ? inflateSync(body, opts) : inflateRawSync(body, opts));
  } catch (err) {
    throw new InviteError('bad_compression', 'invite code is compressed but does not inflate', {
      cause: err,
    });
  }
}

export function decompress(data: Uint8Array): { bytes: Uint8Array; form: CompressionForm } {
  if (data[0] === COMPRESSION_MARKER) {
    if (data.length < 6)
      throw new InviteError('bad_compression', 'invite code is truncated after the compression header');
    const declared = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1, false);
    if (declared > MAX_INFLATED_BYTES)
      throw new InviteError('bad_compression', `invite code declares ${declared} bytes, too large`);
    const bytes = inflate(data.subarray(5));
    if (bytes.length !== declared) {
      throw new InviteError(
        'bad_compression',
        `invite code inflated to ${bytes.length} bytes but declares ${declared}`,
      );
    }
    return { bytes, form: 'marker' };
  }
  if (data[0] === ZLIB_FIRST_BYTE) return { bytes: inflate(data), form: 'zlib' };
  return { bytes: data, form: 'none' };
}

/** The 0x1F form when it is actually smaller, otherwise the bytes unchanged. */
export function compressIfSmaller(data: Uint8Array): Uint8Array {
  if (data.length <= MIN_COMPRESS_BYTES) return data;
  const body = new Uint8Array(deflateSync(data));
  if (body.length + 5 >= data.length) return data;
  const header = new Uint8Array(5);
  header[0] = COMPRESSION_MARKER;
  new DataView(header.buffer).setUint32(1, data.length, false);
  return concatBytes(header, body);
}
