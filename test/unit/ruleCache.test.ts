import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { RuleStore } from '../../src/limits/ports.js';
import { RuleCache } from '../../src/limits/RuleCache.js';
import type { RateLimitRule } from '../../src/limits/types.js';
import { domainRule, limitInput } from '../support/domain.js';

const rule = domainRule;

/** A fixed rule list: the cache's matching is pure, storage is tested against PostgreSQL. */
function fixed(rules: RateLimitRule[]): RuleStore {
  return {
    list: async () => rules,
    upsert: async (r) => r,
    setEnabled: async () => {
      throw new Error('unused');
    },
    delete: async () => undefined,
    replaceMatch: async () => false,
  };
}

const call = limitInput({ hits: 1 });

describe('RuleCache.match', () => {
  it('uses exact-match rules instead of the scope default, per scope', async () => {
    const cache = new RuleCache(
      fixed([
        rule({ name: 'u-default', scope: 'user' }),
        rule({ name: 'u-vip', scope: 'user', match: 'vip' }),
        rule({ name: 'ip-default', scope: 'ip' }),
        rule({ name: 'off', scope: 'ip', enabled: false }),
      ]),
      silentLogger(),
    );
    await cache.reload();
    const names = (c: typeof call) =>
      cache
        .match(c)
        .map((m) => m.rule.name)
        .sort();
    expect(names({ ...call, userId: 'vip', ip: '1.1.1.1' })).toEqual(['ip-default', 'u-vip']);
    expect(names({ ...call, userId: 'bob' })).toEqual(['u-default']);
    expect(names({ ...call, apiKey: 'k' })).toEqual([]);
  });
});
