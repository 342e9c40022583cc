import { createHmac } from 'node:crypto';
import type { PartitionKeyFunction } from './rateLimitHeaders.js';

/**
 * A `partitionKey` for {@link rateLimitHeaders} that tells partitions apart without disclosing
 * them: the first `bytes` bytes of HMAC-SHA256(secret, scope + "\n" + counted key). A client
 * sees the same pk for the same IP, user or API key (per scope) and cannot recover it; keep
 * `secret` private and stable, or the keys change (the draft's sections 6.1 and 8.2).
 */
export function hmacPartitionKey(secret: string | Uint8Array, bytes = 12): PartitionKeyFunction {
  if (typeof secret === 'string' ? secret === '' : secret.byteLength === 0)
    throw new TypeError('hmacPartitionKey: secret must not be empty');
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 32)
    throw new RangeError(`hmacPartitionKey: bytes must be an integer from 1 to 32, got ${bytes}`);
  return (limit) =>
    createHmac('sha256', secret).update(`${limit.scope}\n${limit.key}`).digest().subarray(0, bytes);
}
