import { ValidationError } from '../errors.js';

/** A control character (NUL included: PostgreSQL text cannot hold one) or a lone surrogate. */
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u;

/** A token's name: 1 to 256 bytes of UTF-8 with no control characters. */
export function validateTokenName(name: string): string {
  if (name === '') throw new ValidationError('name', 'must not be empty');
  if (Buffer.byteLength(name, 'utf8') > 256)
    throw new ValidationError('name', 'must be at most 256 bytes');
  if (UNPRINTABLE.test(name))
    throw new ValidationError('name', 'must be printable text: no control characters');
  return name;
}
