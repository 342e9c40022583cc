import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

/** Where a body that did not decode went wrong: a proto field path and what is wrong there. */
export interface DecodeFault {
  /** Proto field path, e.g. "rule.window.seconds" or "hosts[1]"; "request" when no field is known. */
  readonly field: string;
  readonly reason: string;
}

/** Decodes strings as the server does: invalid UTF-8 throws instead of becoming U+FFFD. */
export const strictUtf8 = (() => {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  return (bytes: Uint8Array): string => decoder.decode(bytes);
})();

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64 = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);
const FIXED64 = new Set([ScalarType.FIXED64, ScalarType.SFIXED64, ScalarType.DOUBLE]);
const FIXED32 = new Set([ScalarType.FIXED32, ScalarType.SFIXED32, ScalarType.FLOAT]);
/** ts-proto's own bound on nested messages. */
const MAX_DEPTH = 100;

class Fault extends Error {
  constructor(readonly fault: DecodeFault) {
    super(fault.reason);
  }
}

/**
 * Walks `bytes` as the generated decoder reads a `message` (the same reader, the same rules for
 * unknown fields and mismatched wire types) to name the field a failed decode stopped at: a
 * string that is not UTF-8, a 64-bit integer outside ±(2^53 - 1) (numbers stand for int64 in
 * the generated code), a field cut short. Run only after a decode failed, so it costs nothing
 * on calls that decode; undefined when it finds nothing wrong.
 */
export function locateDecodeFault(
  bytes: Uint8Array,
  message: DescMessage,
): DecodeFault | undefined {
  const reader = new BinaryReader(bytes, strictUtf8);
  try {
    walk(reader, message, '', reader.len, 0);
    return undefined;
  } catch (err) {
    if (err instanceof Fault) return err.fault;
    return { field: 'request', reason: 'is not a valid protobuf encoding' };
  }
}

function walk(
  reader: BinaryReader,
  message: DescMessage,
  prefix: string,
  end: number,
  depth: number,
) {
  const here = prefix === '' ? 'request' : prefix.slice(0, -1);
  if (depth > MAX_DEPTH) throw new Fault({ field: here, reason: 'nests messages too deeply' });
  const counts = new Map<number, number>();
  while (reader.pos < end) {
    const tag = read(here, () => reader.uint32());
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    const field = message.fields.find((f) => f.number === fieldNo);
    if (field && accepts(field, wireType)) {
      const index = counts.get(fieldNo) ?? 0;
      counts.set(fieldNo, index + 1);
      const name = prefix + field.name + (field.fieldKind === 'list' ? `[${index}]` : '');
      readField(reader, field, wireType, name, depth);
      continue;
    }
    // As the generated decoder: an end-group tag or a zero tag ends the message.
    if (wireType === WireType.EndGroup || tag === 0) return;
    read(field ? prefix + field.name : here, () => reader.skip(wireType));
  }
}

/** Whether the generated decoder reads `field` from this wire type (else it skips the value). */
function accepts(field: DescField, wireType: number): boolean {
  switch (field.fieldKind) {
    case 'message':
      return wireType === WireType.LengthDelimited;
    case 'enum':
      return wireType === WireType.Varint;
    case 'scalar':
      return wireType === wireTypeOf(field.scalar);
    case 'list':
      if (field.listKind === 'message') return wireType === WireType.LengthDelimited;
      if (field.listKind === 'enum')
        return wireType === WireType.Varint || wireType === WireType.LengthDelimited;
      // Packed or not, a numeric list reads either way.
      return (
        wireType === wireTypeOf(field.scalar) ||
        (wireType === WireType.LengthDelimited && !isText(field.scalar))
      );
    case 'map':
      return false;
  }
}

function readField(
  reader: BinaryReader,
  field: DescField,
  wireType: number,
  name: string,
  depth: number,
): void {
  if (
    field.fieldKind === 'message' ||
    (field.fieldKind === 'list' && field.listKind === 'message')
  ) {
    const length = read(name, () => reader.uint32());
    walk(reader, field.message, `${name}.`, reader.pos + length, depth + 1);
    return;
  }
  const scalar =
    field.fieldKind === 'scalar' || (field.fieldKind === 'list' && field.listKind === 'scalar')
      ? field.scalar
      : ScalarType.INT32;
  if (wireType === WireType.LengthDelimited && !isText(scalar)) {
    // A packed list of numbers.
    const packedEnd = read(name, () => reader.uint32()) + reader.pos;
    while (reader.pos < packedEnd) readScalar(reader, scalar, name);
    return;
  }
  readScalar(reader, scalar, name);
}

function readScalar(reader: BinaryReader, scalar: ScalarType, name: string): void {
  if (scalar === ScalarType.STRING) {
    read(name, () => {
      try {
        return reader.string();
      } catch (err) {
        if (err instanceof TypeError)
          throw new Fault({ field: name, reason: 'is not valid UTF-8' });
        throw err;
      }
    });
    return;
  }
  if (INT64.has(scalar)) {
    const value = BigInt(read(name, () => readInt64(reader, scalar)));
    if (value > MAX_SAFE || value < -MAX_SAFE) {
      throw new Fault({
        field: name,
        reason: `must be within ±9007199254740991 (2^53 - 1), got ${value}`,
      });
    }
    return;
  }
  read(name, () => {
    if (scalar === ScalarType.BYTES) return reader.bytes();
    if (FIXED64.has(scalar)) return reader.skip(WireType.Bit64);
    if (FIXED32.has(scalar)) return reader.skip(WireType.Bit32);
    return reader.uint32();
  });
}

function readInt64(reader: BinaryReader, scalar: ScalarType): bigint | string {
  switch (scalar) {
    case ScalarType.UINT64:
      return reader.uint64();
    case ScalarType.SINT64:
      return reader.sint64();
    case ScalarType.FIXED64:
      return reader.fixed64();
    case ScalarType.SFIXED64:
      return reader.sfixed64();
    default:
      return reader.int64();
  }
}

/** Reads with `fn`; a reader error (cut short, bad varint) is a Fault of field `name`. */
function read<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Fault) throw err;
    throw new Fault({ field: name, reason: 'is truncated or malformed' });
  }
}

function wireTypeOf(scalar: ScalarType): WireType {
  if (isText(scalar)) return WireType.LengthDelimited;
  if (FIXED64.has(scalar)) return WireType.Bit64;
  if (FIXED32.has(scalar)) return WireType.Bit32;
  return WireType.Varint;
}

function isText(scalar: ScalarType): boolean {
  return scalar === ScalarType.STRING || scalar === ScalarType.BYTES;
}
