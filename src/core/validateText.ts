import { ValidationError } from '../errors.js';

/**
 * A NUL (PostgreSQL text cannot hold one: error 22021, which fails every item of a batched
 * statement) or a UTF-16 surrogate that is not part of a pair (no UTF-8 encodes it). With the
 * `u` flag a well-formed pair is one code point, so only lone surrogates match \p{Cs}.
 */
const UNSTORABLE = /[\0\p{Cs}]/u;

/**
 * Throws ValidationError naming `field` unless `value` is text the database can store: no NUL
 * character, no lone surrogate, and at most `maxBytes` bytes of UTF-8 when a bound is given.
 * Every text field of every request passes here before it reaches a store or a batch.
 *
 * Invalid UTF-8 bytes never get this far from the wire: the gRPC edge decodes strings
 * strictly and answers such a body INVALID_ARGUMENT naming the field (src/grpc/
 * guardDeserialization.ts). A lone surrogate cannot come through protobuf either, but a JS
 * string may hold one (JSON "\ud800"), so it is checked here for every other way in.
 */
export function validateText(value: string, field: string, maxBytes?: number): string {
  const bad = UNSTORABLE.exec(value);
  if (bad) {
    throw new ValidationError(
      field,
      bad[0] === '\0'
        ? `must not contain a NUL character (U+0000), found at index ${bad.index}`
        : `must be valid Unicode text: a lone surrogate U+${bad[0]
            .charCodeAt(0)
            .toString(16)
            .toUpperCase()} at index ${bad.index}`,
    );
  }
  if (maxBytes !== undefined && Buffer.byteLength(value, 'utf8') > maxBytes) {
    throw new ValidationError(field, `must be at most ${maxBytes} bytes`);
  }
  return value;
}
