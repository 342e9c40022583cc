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
