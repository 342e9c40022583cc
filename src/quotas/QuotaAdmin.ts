import type { FollowedCache } from '../core/FollowedCache.js';
import type { CommandRuleIndex } from './CommandRuleIndex.js';
import type { CommandRuleStore, TierStore } from './ports.js';
import type { CommandQuotaRule, TierName } from './types.js';
import { validateCommandRule } from './validateCommandRule.js';
import { validateCommandType, validateTier, validateUserId } from './validateQuotaInput.js';

/**
 * Admin operations on command quota rules and tiers. Each write reloads this replica's cache
 * before it answers, so the writer reads its own write here; other replicas follow through the
 * change feed within a second.
 */
export class QuotaAdmin {
  constructor(
    private readonly rules: CommandRuleStore,
    private readonly tiers: TierStore,
    private readonly ruleCache: FollowedCache<CommandRuleIndex>,
    private readonly tierCache: FollowedCache<ReadonlyMap<string, TierName>>,
  ) {}

  /** Rules, ordered by command type then user ("*" first); filters apply when given. */
  async listRules(
    filter: { userId?: string; commandType?: string } = {},
  ): Promise<CommandQuotaRule[]> {
    // Checked like any other input: a filter no rule can match is a caller's mistake to name.
    if (filter.userId !== undefined && filter.userId !== '*') validateUserId(filter.userId);
    if (filter.commandType !== undefined && filter.commandType !== '*') {
      validateCommandType(filter.commandType);
    }
    const rules = await this.rules.list();
    return rules.filter(
      (r) =>
        (filter.userId === undefined || r.userId === filter.userId) &&
        (filter.commandType === undefined || r.commandType === filter.commandType),
    );
  }

  async upsertRule(rule: CommandQuotaRule): Promise<CommandQuotaRule> {
    const stored = await this.rules.upsert(validateCommandRule(rule));
    await this.ruleCache.reload();
    return stored;
  }

  async deleteRule(userId: string, commandType: string): Promise<void> {
    if (userId !== '*') validateUserId(userId);
    if (commandType !== '*') validateCommandType(commandType);
    await this.rules.delete(userId, commandType);
    await this.ruleCache.reload();
  }

  async setTier(userId: string, tier: string): Promise<TierName> {
    const name = validateTier(tier);
    await this.tiers.set(validateUserId(userId), name);
    await this.tierCache.reload();
    return name;
  }

  getTier(userId: string): Promise<TierName> {
    return this.tiers.get(validateUserId(userId));
  }
}
