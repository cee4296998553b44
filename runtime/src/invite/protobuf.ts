import { concatBytes } from './bytes.js';
import { InviteError } from './errors.js';

/**
 * Minimal protobuf wire format: just what SignedInvite, InvitePayload and ConversationCustomMetadata
 * use (varint, 64-bit fixed, length-delimited). Hand-written so the invite module has no codegen and
 * no dependency beyond @noble/*.
 */

export const WireType = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];

  private varint(value: bigint): void {
    const out: number[] = [];
    let v = value;
    while (v > 0x7fn) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.parts.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, WireType.bytes);
    this.varint(BigInt(value.length));
    this.parts.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  bool(field: number, value: boolean): this {
    this.key(field, WireType.varint);
    this.varint(value ? 1n : 0n);
    return this;
  }

  sfixed64(field: number, value: number): this {
    if (!Number.isSafeInteger(value))
      throw new InviteError('bad_argument', `field ${field}: ${value} is not a safe integer`);
    this.key(field, WireType.fixed64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(value), true);
    this.parts.push(b);
    return this;
  }

  /** Re-emits a field read by readFields unchanged (preserves fields we do not model). */
  raw(f: ProtoField): this {
    this.key(f.field, f.v.wire);
    if (f.v.wire === WireType.varint) this.varint(f.v.value);
    else {
      if (f.v.wire === WireType.bytes) this.varint(BigInt(f.v.value.length));
      this.parts.push(f.v.value);
    }
    return this;
  }

  finish(): Uint8Array {
    return concatBytes(...this.parts);
  }
}

export type ProtoValue =
  | { wire: typeof WireType.varint; value: bigint }
  | { wire: typeof WireType.fixed64; value: Uint8Array }
  | { wire: typeof WireType.bytes; value: Uint8Array }
  | { wire: typeof WireType.fixed32; value: Uint8Array };

export interface ProtoField {
  field: number;
  v: ProtoValue;
}

function malformed(what: string, detail: string): InviteError {
  return new InviteError('bad_protobuf', `${what} is not valid protobuf: ${detail}`);
}

/** Splits a message into its fields (unknown fields included, so callers can skip them). */
export function readFields(data: Uint8Array, what: string): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= data.length) throw malformed(what, 'truncated varint');
      const b = data[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw malformed(what, 'varint too long');
    }
  };
  const take = (n: number): Uint8Array => {
    if (n < 0 || pos + n > data.length) throw malformed(what, 'truncated field');
    const out = data.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < data.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw malformed(what, 'field number 0');
    switch (wire) {
      case WireType.varint:
        fields.push({ field, v: { wire, value: varint() } });
        break;
      case WireType.fixed64:
        fields.push({ field, v: { wire, value: take(8) } });
        break;
      case WireType.bytes: {
        const len = varint();
        if (len > BigInt(data.length)) throw malformed(what, 'truncated field (length exceeds message)');
        fields.push({ field, v: { wire, value: take(Number(len)) } });
        break;
      }
      case WireType.fixed32:
        fields.push({ field, v: { wire, value: take(4) } });
        break;
      default:
        throw malformed(what, `unsupported wire type ${wire} for field ${field}`);
    }
  }
  return fields;
}

/** Typed accessors: a known field with the wrong wire type makes the message malformed. */
export function asBytes(f: ProtoField, what: string): Uint8Array {
  if (f.v.wire !== WireType.bytes) throw malformed(what, `field ${f.field} should be length-delimited`);
  return f.v.value;
}

export function asString(f: ProtoField, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(asBytes(f, what));
  } catch (err) {
    if (err instanceof InviteError) throw err;
    throw malformed(what, `field ${f.field} is not valid UTF-8`);
  }
}

export function asBool(f: ProtoField, what: string): boolean {
  if (f.v.wire !== WireType.varint) throw malformed(what, `field ${f.field} should be a varint`);
  return f.v.value !== 0n;
}

export function asSfixed64(f: ProtoField, what: string): number {
  if (f.v.wire !== WireType.fixed64) throw malformed(what, `field ${f.field} should be fixed64`);
  const v = new DataView(f.v.value.buffer, f.v.value.byteOffset, 8).getBigInt64(0, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw malformed(what, `field ${f.field} is out of range`);
  }
  return Number(v);
}
