import type { DecisionEvent, RuleOutcome } from '../../src/core/decisions.js';

/** A rule outcome: user scope, not shadow, not exceeded, with `r` changed. */
export function outcome(r: Partial<RuleOutcome> = {}): RuleOutcome {
  return { rule: 'r', scope: 'user', key: 'alice', shadow: false, exceeded: false, ...r };
}

/** A CheckLimit answer from user alice at 1 h into the epoch, with `e` changed. */
export function limitEvent(e: Partial<DecisionEvent> = {}): DecisionEvent {
  return {
    source: 'check_limit',
    allowed: true,
    degraded: false,
    replayed: false,
    rules: [],
    caller: { userId: 'alice' },
    at: 3_600_000,
    ...e,
  };
}

/** A denial of alice by rule `rule` (user scope). */
export function denial(rule = 'r', e: Partial<DecisionEvent> = {}): DecisionEvent {
  return limitEvent({ allowed: false, rules: [outcome({ rule, exceeded: true })], ...e });
}

/** A CheckCommandQuota answer for alice's `shell` command, with `e` changed. */
export function commandEvent(e: Partial<DecisionEvent> = {}): DecisionEvent {
  return {
    source: 'command_quota',
    allowed: true,
    degraded: false,
    replayed: false,
    rules: [
      {
        rule: 'command:shell',
        scope: 'command',
        key: 'alice/shell',
        shadow: false,
        exceeded: false,
      },
    ],
    caller: { userId: 'alice', commandType: 'shell' },
    at: 3_600_000,
    ...e,
  };
}
