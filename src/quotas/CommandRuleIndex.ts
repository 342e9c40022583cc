import type { CommandQuotaRule } from './types.js';

/**
 * The command quota rules, indexed for lookup. For a user and command type the rule is the
 * first of: the user's rule for the type, the user's "*" rule, the type's default ("*" user),
 * the "*" default for any type. No rule: unlimited.
 */
export class CommandRuleIndex {
  private readonly byKey = new Map<string, CommandQuotaRule>();
  /** Command types with a rule of their own for every user. */
  readonly defaultTypes: readonly string[];

  constructor(readonly rules: readonly CommandQuotaRule[]) {
    for (const rule of rules) this.byKey.set(key(rule.userId, rule.commandType), rule);
    this.defaultTypes = rules
      .filter((r) => r.userId === '*' && r.commandType !== '*')
      .map((r) => r.commandType);
  }

  ruleFor(userId: string, commandType: string): CommandQuotaRule | undefined {
    return (
      this.byKey.get(key(userId, commandType)) ??
      this.byKey.get(key(userId, '*')) ??
      this.byKey.get(key('*', commandType)) ??
      this.byKey.get(key('*', '*'))
    );
  }

  /** Command types with a rule for `userId`: the defaults and the user's own ("*" left out). */
  typesFor(userId: string): string[] {
    const types = new Set(this.defaultTypes);
    for (const rule of this.rules) {
      if (rule.userId === userId && rule.commandType !== '*') types.add(rule.commandType);
    }
    return [...types];
  }
}

/** User ids and command types are stored in PostgreSQL text, which never holds a NUL. */
function key(userId: string, commandType: string): string {
  return `${userId}\u0000${commandType}`;
}
