// Serializers of the few Structured Field (RFC 9651) bare items the RateLimit fields use.

/** Largest magnitude of an sf-integer: 15 decimal digits (RFC 9651, section 3.3.1). */
export const SF_INTEGER_MAX = 999_999_999_999_999;

const encoder = new TextEncoder();

/**
 * `value` as an sf-integer, clamped into the range an sf-integer can hold; a fraction is
 * dropped and a value that is not a number (NaN) is 0, since the field must stay parseable.
 */
export function serializeSfInteger(value: number): string {
  if (Number.isNaN(value)) return '0';
  const clamped = Math.min(SF_INTEGER_MAX, Math.max(-SF_INTEGER_MAX, Math.trunc(value)));
  // -0 would print as "0" anyway; String() never uses exponent form below 1e21.
  return String(clamped === 0 ? 0 : clamped);
}

/**
 * `text` as an sf-string. `"` and `\` are escaped; an sf-string holds only printable ASCII, so
 * any other character (control, non-ASCII, a lone surrogate as U+FFFD) is written as the
 * percent-encoding of its UTF-8 bytes: the name stays recognisable and distinct.
 */
export function serializeSfString(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (code >= 0x20 && code <= 0x7e) out += char === '"' || char === '\\' ? `\\${char}` : char;
    else
      for (const byte of encoder.encode(char))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** `bytes` as an sf-binary (byte sequence): base64 with padding between colons. */
export function serializeSfBinary(bytes: Uint8Array): string {
  return `:${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}:`;
}
