import type { Logger } from '../log.js';
import type { ChangeFeed } from '../core/ports.js';
import type { RuleStore } from './ports.js';
import type { CheckLimitInput, RateLimitRule, Scope } from './types.js';
import { coalesced } from '../core/coalesced.js';
import { followChanges } from '../core/followChanges.js';

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
  private index = new Map<Scope, ScopeIndex>();
  private loaded = false;
  private retry: NodeJS.Timeout | undefined;
  private unfollow: () => void = () => undefined;
  /** Exact-match rules left out of the index, by name and match: each is warned of once. */
  private unusable = new Set<string>();

  /**
   * `matchKey` gives the counter key an exact-match rule applies to (an IP rule's network, for
   * one), and throws for a match that can apply to no call: such a rule is left out.
   */
  constructor(
    private readonly store: RuleStore,
    private readonly logger: Logger,
    private readonly refreshMs = 30_000,
    private readonly matchKey: (rule: RateLimitRule) => string = (rule) => rule.match,
  ) {}

  /** Loads the rules and follows `feed`. */
  async start(feed: ChangeFeed): Promise<void> {
    this.unfollow = await followChanges(
      feed,
      'rate_limit_rules',
      () => this.reload(),
      this.refreshMs,
    );
  }

  stop(): void {
    this.unfollow();
    clearTimeout(this.retry);
  }

  /** Whether rules have been loaded at least once. */
  get ready(): boolean {
    return this.loaded;
  }

  /** Reloads now; concurrent calls coalesce into at most one more load. */
  readonly reload: () => Promise<void> = coalesced(async () => {
    try {
      this.index = this.buildIndex(await this.store.list());
      this.loaded = true;
    } catch (err) {
      // Keep serving the last rules, and try again soon rather than at the next safety poll:
      // a change announced while the store failed must not wait 30 s.
      this.logger.warn({ err }, 'rule reload failed; keeping the last rules, retrying in 1 s');
      clearTimeout(this.retry);
      this.retry = setTimeout(() => void this.reload(), 1000);
      this.retry.unref();
    }
  });

  /**
   * The rules that apply to a call, with the identifier each keys on: per scope whose identifier
   * was given, the exact-match rules if any exist, else the scope's "*" rules. The call's
   * identifiers are counter keys already (CallerKeys.forCall).
   */
  match(input: CheckLimitInput): { rule: RateLimitRule; key: string }[] {
    const out: { rule: RateLimitRule; key: string }[] = [];
    for (const [scope, idx] of this.index) {
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
