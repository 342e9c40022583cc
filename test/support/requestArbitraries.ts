import { readFileSync } from 'node:fs';
import {
  createFileRegistry,
  fromBinary,
  ScalarType,
  type DescField,
  type DescMessage,
} from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { descriptorSetPath } from '../../src/grpc/addReflection.js';

/**
 * fast-check arbitraries of request bodies for any method, built from the service descriptors:
 * well-shaped messages whose fields hold ordinary and hostile values (NUL, invalid UTF-8, 10 kB
 * strings, int64 extremes, NaN, infinities, -0, subnormals, unknown enum values, unknown fields,
 * wrong wire types), bodies cut short, raw random bytes; and "poisoned" bodies, each of which
 * holds at least one thing the service must refuse.
 */

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath())),
);

/** The request message of a method path ("/quota.v1.QuotaService/CheckLimit"). */
export function requestMessage(path: string): DescMessage {
  const [, service = '', method = ''] = path.split('/');
  const found = registry.getService(service)?.methods.find((m) => m.name === method);
  if (!found) throw new Error(`no method ${path} in the descriptor set`);
  return found.input;
}

/** One encoded field: its number, wire type and value. */
type Part =
  | { no: number; wire: WireType.Varint; value: bigint }
  | { no: number; wire: WireType.Bit64; value: number }
  | { no: number; wire: WireType.Bit32; value: number }
  | { no: number; wire: WireType.LengthDelimited; value: Uint8Array };

function encode(parts: readonly Part[]): Uint8Array {
  const w = new BinaryWriter();
  for (const p of parts) {
    w.uint32((p.no << 3) | p.wire);
    if (p.wire === WireType.Varint) {
      if (p.value >= 2n ** 63n) w.uint64(p.value);
      else w.int64(p.value);
    } else if (p.wire === WireType.Bit64) w.double(p.value);
    else if (p.wire === WireType.Bit32) w.float(p.value);
    else w.bytes(p.value);
  }
  return w.finish();
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Values that mean something to the service, so that some requests are valid. */
const ORDINARY_TEXT = [
  '',
  '*',
  'alice',
  'users',
  'r-1',
  'exec-1',
  'fuzz-self',
  '10.0.0.1',
  '2001:db8::1',
  '/upload',
  'default',
  'ROLE_ADMIN',
];
const INVALID_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xc3], [0x61, 0x80, 0x62]].map(
  (b) => Uint8Array.from(b),
);
const NUL_TEXT = fc
  .tuple(fc.constantFrom(...ORDINARY_TEXT), fc.string({ maxLength: 8 }))
  .map(([a, b]) => `${a}\u0000${b}`);
const LONG_TEXT = fc.constantFrom('x'.repeat(10_240), 'é'.repeat(5_000), '\u0000'.repeat(300));

/** Text as sent on the wire: lone surrogates in a JS string are sent as U+FFFD by any encoder. */
const textBytes = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...ORDINARY_TEXT).map(utf8) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }).map(utf8) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }).map(utf8) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }).map(utf8) },
  { weight: 2, arbitrary: NUL_TEXT.map(utf8) },
  { weight: 1, arbitrary: LONG_TEXT.map(utf8) },
  { weight: 1, arbitrary: fc.constantFrom(...INVALID_UTF8) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }) },
);

const INT64_EDGES = [
  0n,
  1n,
  10n,
  60n,
  -1n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  -(2n ** 53n) + 1n,
  -(2n ** 53n) - 1n,
  2n ** 63n - 1n,
  -(2n ** 63n),
  2n ** 64n - 1n,
];
const int64 = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...INT64_EDGES) },
  { weight: 1, arbitrary: fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n) },
);
const int32 = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      0,
      1,
      5,
      60,
      100,
      1000,
      1440,
      2 ** 31 - 1,
      2 ** 32 - 1,
      -1,
      -(2 ** 31),
    ),
  },
  { weight: 1, arbitrary: fc.integer() },
);
const BAD_DOUBLES = [NaN, Infinity, -Infinity, 5e-324, -5e-324, 1e-310];
const double = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom(0, -0, 10, 50, 85, 97, 100, 100.5, -1, 2 ** -1022, 1e308),
  },
  { weight: 1, arbitrary: fc.constantFrom(...BAD_DOUBLES) },
  { weight: 1, arbitrary: fc.double() },
);
const enumValue = fc.constantFrom(0n, 1n, 2n, 3n, 4n, 99n, -1n, 2n ** 31n - 1n);
const bool = fc.constantFrom(0n, 1n, 2n, 2n ** 63n - 1n);

/** A value for `field` (one element for a list). */
function fieldPart(field: DescField, depth: number): fc.Arbitrary<Part> {
  const no = field.number;
  const kind = field.fieldKind === 'list' ? field.listKind : field.fieldKind;
  if (kind === 'message') {
    const message = (field as { message: DescMessage }).message;
    return messageBytes(message, depth + 1).map((value) => ({
      no,
      wire: WireType.LengthDelimited,
      value,
    }));
  }
  if (kind === 'enum') return enumValue.map((value) => ({ no, wire: WireType.Varint, value }));
  if (kind === 'map')
    return fc.constant({ no, wire: WireType.LengthDelimited, value: new Uint8Array() });
  const scalar = (field as { scalar: ScalarType }).scalar;
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return textBytes.map((value) => ({ no, wire: WireType.LengthDelimited, value }));
    case ScalarType.DOUBLE:
      return double.map((value) => ({ no, wire: WireType.Bit64, value }));
    case ScalarType.FLOAT:
      return double.map((value) => ({ no, wire: WireType.Bit32, value }));
    case ScalarType.BOOL:
      return bool.map((value) => ({ no, wire: WireType.Varint, value }));
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
      return int64.map((value) => ({ no, wire: WireType.Varint, value }));
    default:
      return int32.map((value) => ({ no, wire: WireType.Varint, value: BigInt(value) }));
  }
}

/** An unknown field, or a known number with any wire type. */
const junkPart = fc.oneof(
  fc.record({
    no: fc.integer({ min: 1, max: 40 }),
    wire: fc.constant(WireType.Varint),
    value: int64,
  }),
  fc.record({
    no: fc.integer({ min: 1, max: 40 }),
    wire: fc.constant(WireType.Bit64),
    value: fc.double(),
  }),
  fc.record({
    no: fc.integer({ min: 1, max: 40 }),
    wire: fc.constant(WireType.LengthDelimited),
    value: fc.uint8Array({ maxLength: 16 }),
  }),
) as fc.Arbitrary<Part>;

/** A message of type `message` whose fields hold ordinary and hostile values. */
function messageBytes(message: DescMessage, depth = 0): fc.Arbitrary<Uint8Array> {
  const fields = message.fields.map((f) => fieldPart(f, depth));
  if (depth > 3 || fields.length === 0)
    return fc.array(junkPart, { maxLength: depth > 3 ? 0 : 2 }).map(encode);
  return fc
    .array(
      fc.oneof({ weight: 6, arbitrary: fc.oneof(...fields) }, { weight: 1, arbitrary: junkPart }),
      {
        maxLength: 10,
      },
    )
    .map(encode);
}

/** Any body for a request of `message`: well-shaped, cut short, a byte changed, or random. */
export function anyBody(message: DescMessage): fc.Arbitrary<Uint8Array> {
  const shaped = messageBytes(message);
  return fc.oneof(
    { weight: 6, arbitrary: shaped },
    {
      weight: 2,
      arbitrary: shaped.chain((b) => fc.nat(b.length).map((n) => b.subarray(0, n))),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(shaped, fc.nat(), fc.integer({ min: 0, max: 255 }))
        .map(([b, at, byte]) => {
          const copy = Uint8Array.from(b);
          if (copy.length > 0) copy[at % copy.length] = byte;
          return copy;
        }),
    },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  );
}

/** A leaf the service must refuse whatever else the request holds: a path and a bad value. */
type Poison = { path: DescField[]; value: fc.Arbitrary<Part> };

/** Every poisonable leaf of `message`: text, 64-bit integers and doubles, nested ones too. */
function poisons(message: DescMessage, depth = 0, path: DescField[] = []): Poison[] {
  if (depth > 3) return [];
  return message.fields.flatMap((f): Poison[] => {
    const here = [...path, f];
    const kind = f.fieldKind === 'list' ? f.listKind : f.fieldKind;
    if (kind === 'message')
      return poisons((f as { message: DescMessage }).message, depth + 1, here);
    if (kind !== 'scalar') return [];
    const no = f.number;
    switch ((f as { scalar: ScalarType }).scalar) {
      case ScalarType.STRING:
        return [
          {
            path: here,
            value: fc
              .oneof(NUL_TEXT.map(utf8), fc.constantFrom(...INVALID_UTF8))
              .map((value) => ({ no, wire: WireType.LengthDelimited, value })),
          },
        ];
      case ScalarType.INT64:
      case ScalarType.UINT64:
      case ScalarType.SINT64:
        return [
          {
            path: here,
            value: fc
              .constantFrom(2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n), -(2n ** 53n) - 1n)
              .map((value) => ({ no, wire: WireType.Varint, value })),
          },
        ];
      case ScalarType.DOUBLE:
        return [
          {
            path: here,
            value: fc
              .constantFrom(...BAD_DOUBLES)
              .map((value) => ({ no, wire: WireType.Bit64, value })),
          },
        ];
      default:
        return [];
    }
  });
}

/** The poison's leaf wrapped in its enclosing messages: the last occurrence of each wins. */
function wrap(path: readonly DescField[], leaf: Part): Part {
  let part = leaf;
  for (let i = path.length - 2; i >= 0; i--)
    part = { no: path[i]!.number, wire: WireType.LengthDelimited, value: encode([part]) };
  return part;
}

/**
 * A body the service must refuse: a well-shaped message followed by a field cut short, or by
 * a hostile leaf (NUL or invalid UTF-8 text, an int64 past 2^53, a non-finite or subnormal
 * double) as the last occurrence of its field.
 */
export function poisonedBody(message: DescMessage): fc.Arbitrary<Uint8Array> {
  const shaped = messageBytes(message);
  const cut = fc
    .tuple(shaped, fc.integer({ min: 1, max: 40 }), fc.uint8Array({ maxLength: 3 }))
    .map(([b, no, tail]) => {
      // A length-delimited field that claims 50 bytes and holds at most 3.
      const head = new BinaryWriter()
        .uint32((no << 3) | WireType.LengthDelimited)
        .uint32(50)
        .finish();
      return Uint8Array.from([...b, ...head, ...tail]);
    });
  const leaves = poisons(message);
  if (leaves.length === 0) return cut;
  const leaf = fc
    .constantFrom(...leaves)
    .chain((p) => p.value.map((part) => wrap(p.path, part)))
    .chain((part) => shaped.map((b) => Uint8Array.from([...b, ...encode([part])])));
  return fc.oneof(cut, leaf);
}
