import { ValidationError } from '../errors.js';
import type { RuleStore } from './ports.js';
import type { RuleCache } from './RuleCache.js';
import type { RateLimitRule, Scope } from './types.js';
import { validateRule } from './validateRule.js';

/**
 * Admin operations on rules. Each write reloads this replica's cache before it answers, so the
 * writer reads its own write here; other replicas follow through the change feed.
 */
export class RuleAdmin {
  constructor(
    private readonly store: RuleStore,
    private readonly cache: RuleCache,
  ) {}

  list(scope?: Scope): Promise<RateLimitRule[]> {
    return this.store.list(scope);
  }

  async upsert(rule: RateLimitRule): Promise<RateLimitRule> {
    const stored = await this.store.upsert(validateRule(rule));
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
}

function requireName(name: string): string {
  if (name === '') throw new ValidationError('name', 'must not be empty');
  return name;
}
