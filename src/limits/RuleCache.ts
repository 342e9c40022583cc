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

  constructor(
    private readonly store: RuleStore,
    private readonly logger: Logger,
    private readonly refreshMs = 30_000,
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
      this.index = buildIndex(await this.store.list());
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
   * was given, the exact-match rules if any exist, else the scope's "*" rules.
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
}

function buildIndex(rules: readonly RateLimitRule[]): Map<Scope, ScopeIndex> {
  const index = new Map<Scope, ScopeIndex>();
  for (const rule of rules) {
    if (!rule.enabled) continue;
    let idx = index.get(rule.scope);
    if (!idx) {
      idx = { defaults: [], exact: new Map() };
      index.set(rule.scope, idx);
    }
    if (rule.match === '*') idx.defaults.push(rule);
    else idx.exact.set(rule.match, [...(idx.exact.get(rule.match) ?? []), rule]);
  }
  return index;
}
