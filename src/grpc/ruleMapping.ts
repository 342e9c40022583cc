import { ValidationError } from '../errors.js';
import type {
  Algorithm as DomainAlgorithm,
  Period as DomainPeriod,
  RateLimitRule as DomainRule,
  Scope as DomainScope,
} from '../limits/types.js';
import {
  Algorithm,
  Period,
  RateLimitRule,
  Scope,
} from '../../clients/typescript/src/gen/quota/v1/types.js';
import { fromDuration, toDuration } from './durations.js';

const SCOPE_TO_DOMAIN = new Map<number, DomainScope>([
  [Scope.SCOPE_IP, 'ip'],
  [Scope.SCOPE_USER, 'user'],
  [Scope.SCOPE_API_KEY, 'api_key'],
  [Scope.SCOPE_RESOURCE, 'resource'],
]);
const SCOPE_TO_PROTO = new Map([...SCOPE_TO_DOMAIN].map(([k, v]) => [v, k as Scope]));

const ALGORITHM_TO_DOMAIN = new Map<number, DomainAlgorithm>([
  [Algorithm.ALGORITHM_UNSPECIFIED, 'sliding_window'],
  [Algorithm.ALGORITHM_SLIDING_WINDOW, 'sliding_window'],
  [Algorithm.ALGORITHM_FIXED_WINDOW, 'fixed_window'],
  [Algorithm.ALGORITHM_TOKEN_BUCKET, 'token_bucket'],
]);
const ALGORITHM_TO_PROTO: Record<DomainAlgorithm, Algorithm> = {
  sliding_window: Algorithm.ALGORITHM_SLIDING_WINDOW,
  fixed_window: Algorithm.ALGORITHM_FIXED_WINDOW,
  token_bucket: Algorithm.ALGORITHM_TOKEN_BUCKET,
};

const PERIOD_TO_DOMAIN = new Map<number, DomainPeriod | null>([
  [Period.PERIOD_UNSPECIFIED, null],
  [Period.PERIOD_DAILY, 'daily'],
  [Period.PERIOD_WEEKLY, 'weekly'],
  [Period.PERIOD_MONTHLY, 'monthly'],
]);
const PERIOD_TO_PROTO: Record<DomainPeriod, Period> = {
  daily: Period.PERIOD_DAILY,
  weekly: Period.PERIOD_WEEKLY,
  monthly: Period.PERIOD_MONTHLY,
};

/** Proto scope → domain; `field` names it in the error for an unknown value. */
export function scopeFromProto(scope: Scope, field: string): DomainScope {
  const s = SCOPE_TO_DOMAIN.get(scope);
  if (!s)
    throw new ValidationError(
      field,
      `unknown scope ${scope}: use SCOPE_IP, SCOPE_USER, SCOPE_API_KEY or SCOPE_RESOURCE`,
    );
  return s;
}

export function scopeToProto(scope: DomainScope): Scope {
  return SCOPE_TO_PROTO.get(scope) ?? Scope.SCOPE_UNSPECIFIED;
}

/** A RateLimitRule message → domain rule; unknown enum values are ValidationErrors. */
export function ruleFromProto(rule: RateLimitRule | undefined): DomainRule {
  if (!rule) throw new ValidationError('rule', 'is required');
  const algorithm = ALGORITHM_TO_DOMAIN.get(rule.algorithm);
  if (!algorithm)
    throw new ValidationError('rule.algorithm', `unknown algorithm ${rule.algorithm}`);
  const period = PERIOD_TO_DOMAIN.get(rule.period);
  if (period === undefined)
    throw new ValidationError('rule.period', `unknown period ${rule.period}`);
  const windowMs = fromDuration(rule.window);
  return {
    name: rule.name,
    scope: scopeFromProto(rule.scope, 'rule.scope'),
    match: rule.match,
    limit: rule.limit,
    // proto3 cannot tell an unset Duration from a zero one after JSON: both mean "no window".
    windowMs: windowMs === undefined || (windowMs === 0 && period !== null) ? null : windowMs,
    algorithm,
    period,
    enabled: rule.enabled ?? true,
    shadow: rule.shadow,
    loadAdaptive: rule.loadAdaptive,
    description: rule.description,
  };
}

export function ruleToProto(rule: DomainRule): RateLimitRule {
  return RateLimitRule.fromPartial({
    name: rule.name,
    scope: scopeToProto(rule.scope),
    match: rule.match,
    limit: rule.limit,
    window: rule.windowMs === null ? undefined : toDuration(rule.windowMs),
    algorithm: ALGORITHM_TO_PROTO[rule.algorithm],
    period: rule.period === null ? Period.PERIOD_UNSPECIFIED : PERIOD_TO_PROTO[rule.period],
    enabled: rule.enabled,
    shadow: rule.shadow,
    loadAdaptive: rule.loadAdaptive,
    description: rule.description,
  });
}
