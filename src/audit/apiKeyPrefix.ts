/** Characters of an API key's keyed hash that the audit keeps. */
export const API_KEY_PREFIX_LENGTH = 12;

/**
 * What the audit keeps of an API key: the first characters of its keyed hash's digest. A stored
 * hash reads `hmac-sha256:<key id>:<digest>`, so its first 12 characters would be the same
 * scheme name for every key; the digest's are what tells keys apart, and 72 bits of an HMAC
 * under a server secret neither are nor reveal the key.
 */
export function apiKeyPrefix(hash: string): string {
  const digest = hash.lastIndexOf(':') + 1;
  return hash.slice(digest, digest + API_KEY_PREFIX_LENGTH);
}
