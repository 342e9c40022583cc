import { ValidationError } from '../errors.js';
import type {
  CommandQuotaInput,
  CommandQuotaResult,
  CommandQuotaRule as DomainRule,
  ExecutionInput,
  ExecutionSummary as DomainSummary,
  PeriodUsage as DomainPeriodUsage,
  QuotaPeriod,
  QuotaStatus,
} from '../quotas/types.js';
import type {
  CheckCommandQuotaRequest,
  CheckCommandQuotaResponse,
  ExecutionSummary,
  GetQuotaStatusResponse,
  PeriodUsage,
  RecordExecutionRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import type { ListCommandQuotaRulesRequest } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { CommandQuotaRule, Period } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { fromDuration, toDuration } from './durations.js';

const PERIOD_TO_PROTO: Record<QuotaPeriod, Period> = {
  daily: Period.PERIOD_DAILY,
  weekly: Period.PERIOD_WEEKLY,
  monthly: Period.PERIOD_MONTHLY,
};

/** proto3 conventions end here: an empty string is an identifier not given, cost 0 means 1. */
export function checkCommandQuotaFromProto(req: CheckCommandQuotaRequest): CommandQuotaInput {
  return {
    userId: req.userId,
    commandType: req.commandType,
    host: req.host || undefined,
    requestId: req.requestId || undefined,
    cost: req.cost === 0 ? 1 : req.cost,
  };
}

export function checkCommandQuotaToProto(result: CommandQuotaResult): CheckCommandQuotaResponse {
  return {
    allowed: result.allowed,
    reason: result.reason ?? '',
    periods: result.periods.map(periodUsageToProto),
    tier: result.tier,
    throttleFactor: result.throttleFactor,
    delay: toDuration(result.delayMs),
    reservationId: result.reservationId ?? '',
    degraded: result.degraded,
  };
}

/** A period without a limit is `unlimited`, its limit and remaining 0. */
export function periodUsageToProto(p: DomainPeriodUsage): PeriodUsage {
  return {
    period: PERIOD_TO_PROTO[p.period],
    limit: p.limit ?? 0,
    unlimited: p.limit === null,
    used: p.used,
    remaining: p.remaining ?? 0,
    resetsAt: p.resetsAt,
  };
}

/**
 * Empty identifiers and an unset start are not given, an unset duration is 0; the status goes
 * through as text (empty means completed) for the domain to check.
 */
export function recordExecutionFromProto(req: RecordExecutionRequest): ExecutionInput {
  return {
    reservationId: req.reservationId || undefined,
    requestId: req.requestId || undefined,
    userId: req.userId,
    commandType: req.commandType,
    host: req.host || undefined,
    startedAt: req.startedAt,
    durationMs: fromDuration(req.duration) ?? 0,
    cpuPercent: req.cpuPercent,
    memoryBytes: req.memoryBytes,
    exitCode: req.exitCode,
    status: req.status,
  };
}

export function quotaStatusToProto(s: QuotaStatus): GetQuotaStatusResponse {
  return {
    userId: s.userId,
    tier: s.tier,
    commands: s.commands.map((c) => ({
      commandType: c.commandType,
      periods: c.periods.map(periodUsageToProto),
      recent: executionSummaryToProto(c.recent),
    })),
    recent: executionSummaryToProto(s.recent),
  };
}

export function executionSummaryToProto(s: DomainSummary): ExecutionSummary {
  return {
    count: s.count,
    failures: s.failures,
    averageDuration: toDuration(s.averageDurationMs),
    averageCpuPercent: s.averageCpuPercent,
    maxMemoryBytes: s.maxMemoryBytes,
    p95Duration: toDuration(s.p95DurationMs),
  };
}

/** A rule's user_id, or DeleteCommandQuotaRule's: empty means "*", every user. */
export function ruleUserFromProto(userId: string): string {
  return userId === '' ? '*' : userId;
}

/** A CommandQuotaRule message → domain rule: an unset period limit is unlimited (null). */
export function commandRuleFromProto(rule: CommandQuotaRule | undefined): DomainRule {
  if (!rule) throw new ValidationError('rule', 'is required');
  return {
    userId: ruleUserFromProto(rule.userId),
    commandType: rule.commandType,
    limits: {
      daily: rule.daily ?? null,
      weekly: rule.weekly ?? null,
      monthly: rule.monthly ?? null,
    },
    cpuEstimatePercent: rule.cpuEstimatePercent,
    memoryEstimateBytes: rule.memoryEstimateBytes,
  };
}

export function commandRuleToProto(rule: DomainRule): CommandQuotaRule {
  return CommandQuotaRule.fromPartial({
    userId: rule.userId,
    commandType: rule.commandType,
    daily: rule.limits.daily ?? undefined,
    weekly: rule.limits.weekly ?? undefined,
    monthly: rule.limits.monthly ?? undefined,
    cpuEstimatePercent: rule.cpuEstimatePercent,
    memoryEstimateBytes: rule.memoryEstimateBytes,
  });
}

/** ListCommandQuotaRules' filters: an empty one matches any value. */
export function ruleFilterFromProto(req: ListCommandQuotaRulesRequest): {
  userId?: string;
  commandType?: string;
} {
  return { userId: req.userId || undefined, commandType: req.commandType || undefined };
}
