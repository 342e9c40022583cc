import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { SecretStore } from './ports.js';

/** What every stored API-key hash starts with. */
const SCHEME = 'hmac-sha256';
/** `hmac-sha256:<key id, 8 chars>:<HMAC-SHA256, 43 chars base64url>`. */
const HASHED = /^hmac-sha256:[A-Za-z0-9_-]{8}:[A-Za-z0-9_-]{43}$/;
/** Name of the generated secret in the SecretStore. */
export const API_KEY_SECRET_NAME = 'api_key_hmac';
/** Bytes of a generated secret, and the least a configured one may have. */
export const MIN_SECRET_BYTES = 32;

/**
 * API keys as they are kept anywhere at rest (counters, stored answers, rule matches): an
 * HMAC-SHA256 under a server secret, so that what the database holds neither is nor reveals a
 * key. The hash names the secret's key id, which tells a hash made under another secret (one
 * that no call can match any more) from a current one. Another secret gives other hashes: a
 * changed secret starts every API-key counter afresh.
 */
export class ApiKeyHasher {
  private readonly key: KeyObject;
  private readonly prefix: string;

  constructor(secret: Uint8Array) {
    if (secret.byteLength < MIN_SECRET_BYTES) {
      throw new Error(`the API-key secret must have at least ${MIN_SECRET_BYTES} bytes`);
    }
    // A KeyObject made once: each HMAC then skips importing the raw secret.
    this.key = createSecretKey(secret);
    const keyId = createHmac('sha256', this.key)
      .update('quota-authority api key id')
      .digest('base64url')
      .slice(0, 8);
    this.prefix = `${SCHEME}:${keyId}:`;
  }

  /**
   * The configured secret (its UTF-8 bytes), or else the one in `store`, generated there by
   * whichever replica starts first.
   */
  static async load(configured: string | undefined, store: SecretStore): Promise<ApiKeyHasher> {
    if (configured !== undefined) return new ApiKeyHasher(Buffer.from(configured, 'utf8'));
    return new ApiKeyHasher(
      await store.getOrCreate(API_KEY_SECRET_NAME, randomBytes(MIN_SECRET_BYTES)),
    );
  }

  /** Whether `text` has the form of a stored hash, under this secret or another. */
  static isHash(text: string): boolean {
    return HASHED.test(text);
  }

  /** The hash of `apiKey` under this secret. */
  hash(apiKey: string): string {
    return this.prefix + createHmac('sha256', this.key).update(apiKey, 'utf8').digest('base64url');
  }

  /** Whether `text` is a hash made under this secret. */
  isCurrent(text: string): boolean {
    return text.startsWith(this.prefix) && HASHED.test(text);
  }
}
