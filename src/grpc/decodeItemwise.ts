import type { DescMessage } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { ValidationError } from '../errors.js';
import { locateDecodeFault, strictUtf8 } from './locateDecodeFault.js';

/** A request whose one field is a list of items each decided on its own (CheckLimits). */
export interface ItemwiseRequest {
  /** The list field's number in the request message, e.g. 1 for `checks`. */
  readonly fieldNumber: number;
  /** The list field's name in the generated message, e.g. "checks". */
  readonly property: string;
  /** The item message, to name the field a failed item decode stopped at. */
  readonly item: DescMessage;
  /** The generated decoder of one item. */
  readonly decode: (reader: BinaryReader) => unknown;
}

/**
 * Decodes `body` item by item, as the generated decoder reads the request (the same rules for
 * unknown fields and wire types): an item that does not decode (invalid UTF-8, a tag that ends
 * it before its length...) becomes `malformed(error)` in its place, so that it alone is refused.
 * Undefined when the fault is outside the items (the body cut short): the whole call is.
 */
export function decodeItemwise(
  body: Uint8Array,
  spec: ItemwiseRequest,
  malformed: (error: ValidationError) => unknown,
): Record<string, unknown[]> | undefined {
  const items: unknown[] = [];
  try {
    const reader = new BinaryReader(body, strictUtf8);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag === ((spec.fieldNumber << 3) | WireType.LengthDelimited)) {
        items.push(decodeItem(reader.bytes(), spec, malformed));
        continue;
      }
      if ((tag & 7) === WireType.EndGroup || tag === 0) break;
      reader.skip(tag & 7);
    }
  } catch {
    return undefined;
  }
  return { [spec.property]: items };
}

function decodeItem(
  bytes: Uint8Array,
  spec: ItemwiseRequest,
  malformed: (error: ValidationError) => unknown,
): unknown {
  try {
    const reader = new BinaryReader(bytes, strictUtf8);
    const item = spec.decode(reader);
    // The generated decoder stops at a zero or end-group tag: the rest of the item's bytes
    // would be neither read nor refused.
    if (reader.pos < reader.len) {
      return malformed(
        new ValidationError('request', `does not decode as ${spec.item.typeName}: ends early`),
      );
    }
    return item;
  } catch (err) {
    // Named as in the item's own message ("user_id"), as a single call would name it.
    const fault = locateDecodeFault(bytes, spec.item);
    if (fault) return malformed(new ValidationError(fault.field, fault.reason));
    const cause = err instanceof Error ? `: ${err.message.slice(0, 120)}` : '';
    return malformed(
      new ValidationError('request', `does not decode as ${spec.item.typeName}${cause}`),
    );
  }
}
