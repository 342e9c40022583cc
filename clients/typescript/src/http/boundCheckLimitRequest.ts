import { createHash } from 'node:crypto';
import { CheckLimitRequest } from '../gen/quota/v1/quota_service.js';

/** Byte bounds of the text fields (proto/quota/v1/quota_service.proto): longer is rejected. */
const MAX_BYTES = {
  ip: 256,
  userId: 256,
  apiKey: 256,
  resource: 256,
  requestId: 256,
  host: 256,
  path: 2048,
  userAgent: 1024,
} as const;

/**
 * Identifiers that must stay distinct: two user ids, API keys or request ids cut to the same
 * prefix would share a counter (or one request's stored answer), so an oversized one is
 * replaced by its digest instead.
 */
const DIGESTED = new Set<keyof typeof MAX_BYTES>(['userId', 'apiKey', 'requestId']);

/** The server's bound on hits (src/limits/validateCheckLimit.ts). */
export const MAX_HITS = 1_000_000;

/** NUL and lone surrogates: the server rejects both (PostgreSQL text cannot hold them). */
const UNSTORABLE = /[\0\p{Cs}]/u;

/**
 * `given` (with `requestId` unless it has one) as a request the server accepts whatever its fields hold: text cut to the server's
 * byte bounds (identifiers digested, see DIGESTED), hits above the server's bound lowered to
 * it (a call that large is denied by any smaller limit). A field of the wrong type is the
 * mapping's bug: TypeError naming it.
 */
export function boundCheckLimitRequest(
  given: Partial<CheckLimitRequest>,
  requestId: string | undefined,
): CheckLimitRequest {
  if (typeof given !== 'object' || given === null)
    throw new TypeError(`request must return an object of CheckLimit fields, got ${typeof given}`);
  const out = CheckLimitRequest.fromPartial({});
  for (const field of Object.keys(MAX_BYTES) as (keyof typeof MAX_BYTES)[]) {
    // The mapping's request_id wins over the requestId option's.
    const value: unknown = field === 'requestId' ? given.requestId || requestId : given[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string')
      throw new TypeError(`request: ${field} must be a string, got ${typeof value}`);
    out[field] = DIGESTED.has(field)
      ? digestIfUnfit(value, MAX_BYTES[field])
      : truncateUtf8(value, MAX_BYTES[field]);
  }
  const hits: unknown = given.hits ?? 0;
  if (typeof hits !== 'number' || !Number.isSafeInteger(hits) || hits < 0)
    throw new TypeError(`request: hits must be a non-negative integer, got ${String(hits)}`);
  out.hits = Math.min(hits, MAX_HITS);
  return out;
}

/**
 * `text` cut to at most `maxBytes` bytes of UTF-8 at a character boundary, with NUL and lone
 * surrogates replaced by U+FFFD: the server rejects both, and a rejected call is a failure.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    const safe = code === 0 || (code >= 0xd800 && code <= 0xdfff) ? '\ufffd' : char;
    const size = Buffer.byteLength(safe, 'utf8');
    if (bytes + size > maxBytes) break;
    out += safe;
    bytes += size;
  }
  return out;
}

/**
 * `text` itself when the server accepts it, else `sha256:` and the base64url SHA-256 of its
 * UTF-16 code units (50 bytes): distinct texts stay distinct, lone surrogates included.
 */
function digestIfUnfit(text: string, maxBytes: number): string {
  if (!UNSTORABLE.test(text) && Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  return `sha256:${createHash('sha256').update(Buffer.from(text, 'utf16le')).digest('base64url')}`;
}
