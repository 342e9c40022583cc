import { ValidationError } from '../errors.js';
import { validateText } from '../core/validateText.js';
import type { CheckLimitInput } from './types.js';
import { MAX_IDENTIFIER_BYTES } from './validateRule.js';

const MAX_HITS = 1_000_000;

/** Text fields with their proto names and byte bounds. */
const BOUNDED: readonly [keyof CheckLimitInput, string, number][] = [
  ['ip', 'ip', MAX_IDENTIFIER_BYTES],
  ['userId', 'user_id', MAX_IDENTIFIER_BYTES],
  ['apiKey', 'api_key', MAX_IDENTIFIER_BYTES],
  ['resource', 'resource', MAX_IDENTIFIER_BYTES],
  ['requestId', 'request_id', MAX_IDENTIFIER_BYTES],
  ['host', 'host', MAX_IDENTIFIER_BYTES],
  ['path', 'path', 2048],
  ['userAgent', 'user_agent', 1024],
];

/** Checks a CheckLimit request; throws ValidationError naming the field. */
export function validateCheckLimit(input: CheckLimitInput): CheckLimitInput {
  for (const [key, field, max] of BOUNDED) {
    const value = input[key];
    if (typeof value === 'string') validateText(value, field, max);
  }
  if (!input.ip && !input.userId && !input.apiKey && !input.resource) {
    throw new ValidationError('ip|user_id|api_key|resource', 'at least one identifier is required');
  }
  const hits = input.hits;
  if (!Number.isSafeInteger(hits) || hits < 1 || hits > MAX_HITS) {
    throw new ValidationError('hits', `must be between 0 (meaning 1) and ${MAX_HITS}`);
  }
  return input;
}
