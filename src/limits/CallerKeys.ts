import { StoreUnavailableError, ValidationError } from '../errors.js';
import { ApiKeyHasher } from './ApiKeyHasher.js';
import { ipKey } from './canonicalIp.js';
import type { CheckLimitInput, RateLimitRule } from './types.js';

/**
 * The keys that counters, stored answers and rules hold for a caller's identifiers: an IP
 * address by its canonical form (an IPv6 address by its network of `ipv6PrefixBits`), an API
 * key by its keyed hash. One textual variant of an address never gets a counter of its own, and
 * no raw API key is kept at rest. The hasher may come later (`useHasher`): its secret may be in
 * a database that is not migrated yet.
 */
export class CallerKeys {
  constructor(
    readonly ipv6PrefixBits: number,
    private hasher?: ApiKeyHasher,
  ) {}

  /** Sets the hasher of API keys, once its secret is known. */
  useHasher(hasher: ApiKeyHasher): void {
    this.hasher = hasher;
  }

  /** Whether API keys can be hashed. */
  get ready(): boolean {
    return this.hasher !== undefined;
  }

  /**
   * A call with `ip` and `apiKey` as counter keys; throws ValidationError naming `ip`. Null
   * when the call has an API key and the hasher is not set yet: nothing can be decided for it.
   */
  forCall(input: CheckLimitInput): CheckLimitInput | null {
    if (input.ip === undefined && input.apiKey === undefined) return input;
    const ip = input.ip === undefined ? undefined : ipKey(input.ip, this.ipv6PrefixBits);
    if (input.apiKey === undefined) return { ...input, ip };
    if (!this.hasher) return null;
    return { ...input, ip, apiKey: this.hasher.hash(input.apiKey) };
  }

  /**
   * A validated rule as it is stored: an exact API key as its hash. A match that is already a
   * hash under this secret (a listed rule written back) stays as it is; one under another
   * secret could never match, and is refused.
   */
  forStore(rule: RateLimitRule): RateLimitRule {
    if (rule.scope !== 'api_key' || rule.match === '*') return rule;
    const hasher = this.requireHasher();
    if (hasher.isCurrent(rule.match)) return rule;
    if (ApiKeyHasher.isHash(rule.match)) {
      throw new ValidationError(
        'rule.match',
        'is a hash made under another API-key secret: give the API key itself',
      );
    }
    return { ...rule, match: hasher.hash(rule.match) };
  }

  /**
   * The counter key an exact-match rule applies to. Throws when a stored match cannot apply to
   * any call: not an IP address, or an API-key hash made under another secret.
   */
  forIndex(rule: RateLimitRule): string {
    switch (rule.scope) {
      case 'ip':
        return ipKey(rule.match, this.ipv6PrefixBits, 'rule.match');
      case 'api_key':
        if (this.requireHasher().isCurrent(rule.match)) return rule.match;
        throw new ValidationError(
          'rule.match',
          ApiKeyHasher.isHash(rule.match)
            ? 'was hashed under another API-key secret; upsert the rule again with the API key'
            : 'is not hashed; upsert the rule again with the API key',
        );
      default:
        return rule.match;
    }
  }

  private requireHasher(): ApiKeyHasher {
    if (!this.hasher) throw new StoreUnavailableError('the API-key secret is not loaded yet');
    return this.hasher;
  }
}
