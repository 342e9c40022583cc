import { validateText } from '../core/validateText.js';
import { ValidationError } from '../errors.js';
import { ApiKeyHasher } from './ApiKeyHasher.js';
import type { CallerKeys } from './CallerKeys.js';
import type { RuleStore } from './ports.js';
import type { RuleCache } from './RuleCache.js';
import type { RateLimitRule, Scope } from './types.js';
import { validateRule } from './validateRule.js';

/**
 * Admin operations on rules. Each write reloads this replica's cache before it answers, so the
 * writer reads its own write here; other replicas follow through the change feed. An exact API
 * key in a match is stored, and listed, as its hash (CallerKeys.forStore).
 */
export class RuleAdmin {
  constructor(
    private readonly store: RuleStore,
    private readonly cache: RuleCache,
    private readonly keys: CallerKeys,
  ) {}

  list(scope?: Scope): Promise<RateLimitRule[]> {
    return this.store.list(scope);
  }

  async upsert(rule: RateLimitRule): Promise<RateLimitRule> {
    const stored = await this.store.upsert(this.keys.forStore(validateRule(rule)));
    await this.cache.reload();
    return stored;
  }

  async setEnabled(name: string, enabled: boolean): Promise<RateLimitRule> {
    const rule = await this.store.setEnabled(requireName(name), enabled);
    await this.cache.reload();
    return rule;
  }

  async delete(name: string): Promise<void> {
    await this.store.delete(requireName(name));
    await this.cache.reload();
  }

  /**
   * Stores the exact API keys that rules still hold in their match (written before keys were
   * hashed) as their hashes; returns the names of the rules changed. Safe to run on several
   * replicas at once: a match is replaced only while it still is the raw key.
   */
  async hashRawApiKeyMatches(): Promise<string[]> {
    const changed: string[] = [];
    for (const rule of await this.store.list('api_key')) {
      if (rule.match === '*' || ApiKeyHasher.isHash(rule.match)) continue;
      const hashed = this.keys.forStore(rule).match;
      if (await this.store.replaceMatch(rule.name, rule.match, hashed)) changed.push(rule.name);
    }
    if (changed.length > 0) await this.cache.reload();
    return changed;
  }
}

function requireName(name: string): string {
  if (name === '') throw new ValidationError('name', 'must not be empty');
  return validateText(name, 'name');
}
