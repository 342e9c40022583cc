import { describe, expect, it } from 'vitest';
import { CommandRuleIndex } from '../../src/quotas/CommandRuleIndex.js';
import type { CommandQuotaRule } from '../../src/quotas/types.js';

function rule(userId: string, commandType: string, daily: number): CommandQuotaRule {
  return {
    userId,
    commandType,
    limits: { daily, weekly: null, monthly: null },
    cpuEstimatePercent: 0,
    memoryEstimateBytes: 0,
  };
}

describe('CommandRuleIndex', () => {
  const index = new CommandRuleIndex([
    rule('*', '*', 1),
    rule('*', 'shell', 2),
    rule('alice', '*', 3),
    rule('alice', 'shell', 4),
    rule('bob', 'code', 5),
  ]);

  it('takes the user rule for the type, then the user "*", the type default, the "*" default', () => {
    expect(index.ruleFor('alice', 'shell')?.limits.daily).toBe(4);
    expect(index.ruleFor('alice', 'test')?.limits.daily).toBe(3);
    expect(index.ruleFor('carol', 'shell')?.limits.daily).toBe(2);
    expect(index.ruleFor('carol', 'test')?.limits.daily).toBe(1);
    expect(index.ruleFor('bob', 'code')?.limits.daily).toBe(5);
    expect(index.ruleFor('bob', 'shell')?.limits.daily).toBe(2);
  });

  it('has no rule when there is no default', () => {
    expect(new CommandRuleIndex([rule('*', 'shell', 2)]).ruleFor('a', 'test')).toBeUndefined();
  });

  it('lists the command types with a rule for a user, "*" left out', () => {
    expect(index.typesFor('bob').sort()).toEqual(['code', 'shell']);
    expect(index.typesFor('alice').sort()).toEqual(['shell']);
  });

  it('does not confuse a user id and command type that join to the same text', () => {
    const tricky = new CommandRuleIndex([rule('a', 'b:c', 7)]);
    expect(tricky.ruleFor('a:b', 'c')).toBeUndefined();
    expect(tricky.ruleFor('a', 'b:c')?.limits.daily).toBe(7);
  });
});
