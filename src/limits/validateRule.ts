import { ATTACK_BLOCK_RULE } from '../core/decisions.js';
import { validateText } from '../core/validateText.js';
import { ValidationError } from '../errors.js';
import { canonicalIpMatch } from './canonicalIp.js';
import type { RateLimitRule } from './types.js';
import { SCOPES } from './types.js';

const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
export const MAX_IDENTIFIER_BYTES = 256;

/** Checks a rule from an admin write; throws ValidationError naming the field under `rule.`. */
export function validateRule(rule: RateLimitRule): RateLimitRule {
  if (rule.name === '') throw new ValidationError('rule.name', 'must not be empty');
  if (!NAME.test(rule.name)) {
    throw new ValidationError('rule.name', 'must be 1 to 128 characters of A-Z a-z 0-9 _ . : -');
  }
  // Names the audit and the metrics give denials that are not a rate-limit rule's.
  if (rule.name === ATTACK_BLOCK_RULE || rule.name.startsWith('command:')) {
    throw new ValidationError(
      'rule.name',
      `is reserved: "${ATTACK_BLOCK_RULE}" and "command:…" name attack blocks and command quotas`,
    );
  }
  if (!SCOPES.includes(rule.scope))
    throw new ValidationError(
      'rule.scope',
      'must be one of SCOPE_IP, SCOPE_USER, SCOPE_API_KEY, SCOPE_RESOURCE',
    );
  let match = rule.match === '' ? '*' : rule.match;
  validateText(match, 'rule.match', MAX_IDENTIFIER_BYTES);
  // Stored as calls are keyed: one address written another way is the same rule.
  if (rule.scope === 'ip' && match !== '*') match = canonicalIpMatch(match);
  if (!Number.isSafeInteger(rule.limit) || rule.limit < 1) {
    throw new ValidationError('rule.limit', 'must be a whole number of at least 1');
  }
  if (rule.period !== null) {
    if (rule.windowMs !== null)
      throw new ValidationError('rule.window', 'must be unset when rule.period is set');
    if (rule.algorithm === 'token_bucket') {
      throw new ValidationError(
        'rule.algorithm',
        'a calendar period counts with a fixed or sliding window, not a token bucket',
      );
    }
  } else {
    if (rule.windowMs === null)
      throw new ValidationError('rule.window', 'is required (or set rule.period)');
    if (!Number.isFinite(rule.windowMs) || rule.windowMs < 1) {
      throw new ValidationError('rule.window', 'must be a positive duration of at least 1 ms');
    }
    if (!Number.isInteger(rule.windowMs))
      throw new ValidationError('rule.window', 'must be a whole number of milliseconds');
    // Window arithmetic (here and in the database's bigint milliseconds) stays exact below it.
    if (!Number.isSafeInteger(rule.windowMs))
      throw new ValidationError('rule.window', 'must be at most 2^53 - 1 ms (about 285,000 years)');
  }
  validateText(rule.description, 'rule.description', 1024);
  // A calendar period always counts per calendar period, whatever window algorithm was named.
  const algorithm = rule.period !== null ? 'fixed_window' : rule.algorithm;
  return { ...rule, match, algorithm };
}
