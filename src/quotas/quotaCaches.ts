import { FollowedCache } from '../core/FollowedCache.js';
import type { Logger } from '../log.js';
import { CommandRuleIndex } from './CommandRuleIndex.js';
import type { CommandRuleStore, TierStore } from './ports.js';
import type { TierName } from './types.js';

/** A replica's copies of the command quota rules and of users' tiers. */
export interface QuotaCaches {
  readonly rules: FollowedCache<CommandRuleIndex>;
  readonly tiers: FollowedCache<ReadonlyMap<string, TierName>>;
}

/** The caches, not loaded yet: `start` them on the change feed, or `reload` them once. */
export function quotaCaches(
  ruleStore: CommandRuleStore,
  tierStore: TierStore,
  logger: Logger,
): QuotaCaches {
  return {
    rules: new FollowedCache(
      'command quota rules',
      async () => new CommandRuleIndex(await ruleStore.list()),
      logger,
    ),
    tiers: new FollowedCache('user tiers', () => tierStore.list(), logger),
  };
}
