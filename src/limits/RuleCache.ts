import type { Logger } from '../log.js';
import type { ChangeFeed } from '../core/ports.js';
import type { RuleStore } from './ports.js';
import type { CheckLimitInput, RateLimitRule, Scope } from './types.js';
import { FollowedCache } from '../core/FollowedCache.js';

interface ScopeIndex {
  readonly defaults: RateLimitRule[];
  readonly exact: Map<string, RateLimitRule[]>;
}

const FIELD: Record<Scope, keyof CheckLimitInput> = {
  ip: 'ip',
  user: 'userId',
  api_key: 'apiKey',
  resource: 'resource',
};

/**
 * This replica's copy of the enabled rules, indexed for matching. Reloaded when the change feed
 * says rules changed (so every replica follows an admin write within a second), after the feed
 * reconnects, and every `refreshMs` as a safety net. A failed reload keeps the last good copy.
 */
export class RuleCache {
  private readonly cache: FollowedCache<Map<Scope, ScopeIndex>>;
  /** Exact-match rules left out of the index, by name and match: each is warned of once. */
  private unusable = new Set<string>();

  /**
   * `matchKey` gives the counter key an exact-match rule applies to (an IP rule's network, for
   * one), and throws for a match that can apply to no call: such a rule is left out.
   */
  constructor(
    store: RuleStore,
    private readonly logger: Logger,
    refreshMs = 30_000,
    private readonly matchKey: (rule: RateLimitRule) => string = (rule) => rule.match,
  ) {
    this.cache = new FollowedCache(
      'rate-limit rules',
      async () => this.buildIndex(await store.list()),
      logger,
      refreshMs,
    );
  }

  /** Loads the rules and follows `feed`. */
  start(feed: ChangeFeed): Promise<void> {
    return this.cache.start(feed, 'rate_limit_rules');
  }

  stop(): void {
    this.cache.stop();
  }

  /** Whether rules have been loaded at least once. */
  get ready(): boolean {
    return this.cache.ready;
  }

  /** Reloads now; concurrent calls coalesce into at most one more load. */
  reload(): Promise<void> {
    return this.cache.reload();
  }

  /**
   * The rules that apply to a call, with the identifier each keys on: per scope whose identifier
   * was given, the exact-match rules if any exist, else the scope's "*" rules. The call's
   * identifiers are counter keys already (CallerKeys.forCall).
   */
  match(input: CheckLimitInput): { rule: RateLimitRule; key: string }[] {
    const out: { rule: RateLimitRule; key: string }[] = [];
    for (const [scope, idx] of this.cache.value ?? []) {
      const key = input[FIELD[scope]] as string;
      if (!key) continue;
      const rules = idx.exact.get(key) ?? idx.defaults;
      for (const rule of rules) out.push({ rule, key });
    }
    return out;
  }

  private buildIndex(rules: readonly RateLimitRule[]): Map<Scope, ScopeIndex> {
    const index = new Map<Scope, ScopeIndex>();
    const unusable = new Set<string>();
    for (const rule of rules) {
      if (!rule.enabled) continue;
      const key = rule.match === '*' ? undefined : this.keyOf(rule, unusable);
      if (key === null) continue;
      let idx = index.get(rule.scope);
      if (!idx) {
        idx = { defaults: [], exact: new Map() };
        index.set(rule.scope, idx);
      }
      if (key === undefined) idx.defaults.push(rule);
      else idx.exact.set(key, [...(idx.exact.get(key) ?? []), rule]);
    }
    this.unusable = unusable;
    return index;
  }

  /** An exact-match rule's counter key; null (noted in `unusable`) if it can apply to no call. */
  private keyOf(rule: RateLimitRule, unusable: Set<string>): string | null {
    try {
      return this.matchKey(rule);
    } catch (err) {
      const id = `${rule.name}\u0000${rule.match}`;
      unusable.add(id);
      // Warned of once, not at every reload.
      if (!this.unusable.has(id)) {
        this.logger.warn(
          { rule: rule.name, reason: (err as Error).message },
          'rule left out: its match can apply to no call',
        );
      }
      return null;
    }
  }
}
