import type { Logger } from '../log.js';
import type { ChangeFeed, RuleStore } from './ports.js';
import type { CheckLimitInput, RateLimitRule, Scope } from './types.js';
import { followChanges } from './followChanges.js';

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
  private reloading: Promise<void> | undefined;
  private again = false;
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
  }

  /** Whether rules have been loaded at least once. */
  get ready(): boolean {
    return this.loaded;
  }

  /** Reloads now; concurrent calls coalesce into at most one more load. */
  async reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        try {
          this.index = buildIndex(await this.store.list());
          this.loaded = true;
        } catch (err) {
          this.logger.warn({ err }, 'rule reload failed; keeping the last rules');
          return;
        }
      } while (this.again);
    })().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

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
