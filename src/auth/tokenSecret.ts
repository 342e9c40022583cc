import { createHash, hash, randomBytes } from 'node:crypto';

/** Marks a string as one of this service's tokens (and lets secret scanners recognise it). */
export const TOKEN_PREFIX = 'qa_';

/** Random bytes per token: 256 bits, beyond any guessing or brute force of its hash. */
const TOKEN_BYTES = 32;

/** A new token: "qa_" and 32 random bytes in base64url (46 characters in all). */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * The only form in which a token is stored: its SHA-256. A plain hash, neither keyed nor slow,
 * on purpose. The tokens this service makes carry 256 random bits, so no dictionary or brute
 * force reaches them through their hash, which is what a slow KDF (bcrypt, scrypt) guards a
 * low-entropy password against; such a KDF would instead cost milliseconds on every call, and a
 * salt would rule out finding a token by its hash in one index lookup. A key (HMAC) would add a
 * secret every replica must share and protect, for no gain at this entropy. QUOTA_ADMIN_TOKEN,
 * chosen by an operator, must be at least 32 characters for the same reason.
 */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * hashToken's value in base64, the key of the Authenticator's copy, computed on every call:
 * the one-shot crypto.hash costs about a sixth of a Hash object (about 1 µs against 6).
 */
export function tokenHashKey(token: string): string {
  return hash('sha256', token, 'base64');
}
