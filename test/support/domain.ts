import { ApiKeyHasher } from '../../src/limits/ApiKeyHasher.js';
import { CallerKeys } from '../../src/limits/CallerKeys.js';
import type { CheckLimitInput, RateLimitRule } from '../../src/limits/types.js';

/** A valid domain rule: 10 per sliding minute per user, with `r` changed. */
export function domainRule(r: Partial<RateLimitRule> = {}): RateLimitRule {
  return {
    name: 'r',
    scope: 'user',
    match: '*',
    limit: 10,
    windowMs: 60_000,
    algorithm: 'sliding_window',
    period: null,
    enabled: true,
    shadow: false,
    loadAdaptive: false,
    description: '',
    ...r,
  };
}

/** A CheckLimit input with no identifier, 1 hit, and `i` set. */
export function limitInput(i: Partial<CheckLimitInput> = {}): CheckLimitInput {
  return { hits: 1, ...i };
}

/** A fixed secret, so that tests know the hash of a key. */
export const TEST_SECRET = Buffer.alloc(32, 7);

/** Caller keys under TEST_SECRET, IPv6 per /64 unless `ipv6PrefixBits` says otherwise. */
export function callerKeys(ipv6PrefixBits = 64): CallerKeys {
  return new CallerKeys(ipv6PrefixBits, new ApiKeyHasher(TEST_SECRET));
}
