import type { CheckLimitInput, CheckLimitResult } from '../limits/types.js';
import type {
  CheckLimitRequest,
  CheckLimitResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { LimitStatus } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { toDuration } from './durations.js';
import { scopeToProto } from './ruleMapping.js';

/** proto3 conventions end here: an empty string is an identifier not given, hits 0 means 1. */
export function checkLimitFromProto(req: CheckLimitRequest): CheckLimitInput {
  return {
    ip: req.ip || undefined,
    userId: req.userId || undefined,
    apiKey: req.apiKey || undefined,
    resource: req.resource || undefined,
    hits: req.hits === 0 ? 1 : req.hits,
    requestId: req.requestId || undefined,
    path: req.path || undefined,
    userAgent: req.userAgent || undefined,
    host: req.host || undefined,
  };
}

export function checkLimitToProto(result: CheckLimitResult): CheckLimitResponse {
  return {
    allowed: result.allowed,
    limits: result.limits.map((l) =>
      LimitStatus.fromPartial({
        rule: l.rule,
        scope: scopeToProto(l.scope),
        key: l.key,
        limit: l.limit,
        remaining: l.remaining,
        window: toDuration(l.windowMs),
        resetAfter: toDuration(l.resetAfterMs),
        shadow: l.shadow,
        exceeded: l.exceeded,
      }),
    ),
    retryAfter: result.retryAfterMs === null ? undefined : toDuration(result.retryAfterMs),
    degraded: result.degraded,
    throttleFactor: result.throttleFactor,
  };
}
