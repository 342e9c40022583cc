import { validateText } from '../core/validateText.js';
import { ValidationError } from '../errors.js';
import { API_KEY_PREFIX_LENGTH } from './apiKeyPrefix.js';
import type { IpKeys } from './ports.js';
import type { BlockScope } from './types.js';
import { ipFilterKey } from './validateAuditFilter.js';

const SCOPES: readonly BlockScope[] = ['ip', 'user', 'api_key'];
/** Bytes of a key at most (as every identifier of a call). */
const MAX_KEY_BYTES = 256;
/** What apiKeyPrefix keeps: the first characters of a base64url digest. */
const API_KEY_PREFIX = new RegExp(`^[A-Za-z0-9_-]{${API_KEY_PREFIX_LENGTH}}$`);

/** A blocked key as the blocks store it. */
export interface BlockKey {
  readonly scope: BlockScope;
  /** An IP as CheckLimit counts it (IPv6 by its network), a user id, an API key's hash prefix. */
  readonly key: string;
}

/**
 * The key an operator names as the blocks store it. Throws ValidationError naming `scope` or
 * `key`. An API key must be given as the hash prefix GetViolations shows: a raw key would
 * never match, and is better refused than looked for.
 */
export function validateBlockKey(scope: string, key: string, ipKeys: IpKeys): BlockKey {
  if (!(SCOPES as readonly string[]).includes(scope))
    throw new ValidationError('scope', `must be one of ${SCOPES.join(', ')}`);
  if (key === '') throw new ValidationError('key', 'must not be empty');
  const text = validateText(key, 'key', MAX_KEY_BYTES);
  const blockScope = scope as BlockScope;
  switch (blockScope) {
    case 'ip':
      return { scope: blockScope, key: ipFilterKey(text, ipKeys, 'key') };
    case 'api_key':
      if (!API_KEY_PREFIX.test(text))
        throw new ValidationError(
          'key',
          `must be the ${API_KEY_PREFIX_LENGTH}-character hash prefix GetViolations shows for the API key, not the key`,
        );
      return { scope: blockScope, key: text };
    case 'user':
      return { scope: blockScope, key: text };
  }
}
