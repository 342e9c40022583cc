import { validateFigure } from '../core/validateFigure.js';
import { ValidationError } from '../errors.js';
import type { CommandQuotaRule } from './types.js';
import { QUOTA_PERIODS } from './types.js';
import { validateCommandType, validateUserId } from './validateQuotaInput.js';

/** Commands per period at most: a trillion, well inside what the counters hold. */
export const MAX_PERIOD_LIMIT = 1_000_000_000_000;

/** Checks a rule; throws ValidationError naming the field (under `rule.`). */
export function validateCommandRule(rule: CommandQuotaRule): CommandQuotaRule {
  if (rule.userId !== '*') validateUserId(rule.userId, 'rule.user_id');
  if (rule.commandType !== '*') validateCommandType(rule.commandType, 'rule.command_type');
  for (const period of QUOTA_PERIODS) {
    const limit = rule.limits[period];
    if (limit === null) continue;
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_PERIOD_LIMIT) {
      throw new ValidationError(
        `rule.${period}`,
        `must be unset (unlimited) or between 0 and ${MAX_PERIOD_LIMIT}`,
      );
    }
  }
  validateFigure(rule.cpuEstimatePercent, 'rule.cpu_estimate_percent');
  if (rule.cpuEstimatePercent < 0 || rule.cpuEstimatePercent > 102_400) {
    throw new ValidationError('rule.cpu_estimate_percent', 'must be between 0 and 102400');
  }
  if (!Number.isSafeInteger(rule.memoryEstimateBytes) || rule.memoryEstimateBytes < 0) {
    throw new ValidationError(
      'rule.memory_estimate_bytes',
      `must be between 0 and ${Number.MAX_SAFE_INTEGER}`,
    );
  }
  return rule;
}
