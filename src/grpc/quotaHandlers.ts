import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { LimitService } from '../limits/LimitService.js';
import type { CheckLimitResult } from '../limits/types.js';
import type {
  CheckLimitRequest,
  CheckLimitResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { LimitStatus } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { toDuration } from './durations.js';
import { handleUnary, type HandlerDeps } from './handleUnary.js';
import { scopeToProto } from './ruleMapping.js';
import { StatusError } from './toStatus.js';

export interface QuotaHandlerServices {
  readonly limits: LimitService;
}

/** QuotaService: each handler maps the request, calls one domain function, maps the result. */
export function quotaHandlers(
  services: QuotaHandlerServices,
  deps: HandlerDeps,
): UntypedServiceImplementation {
  const unimplemented = (method: string) =>
    handleUnary(method, deps, async () => {
      throw new StatusError(status.UNIMPLEMENTED, `${method} is not implemented yet`);
    });
  return {
    checkLimit: handleUnary('CheckLimit', deps, async (req: CheckLimitRequest) =>
      checkLimitResponse(
        await services.limits.check({
          ip: req.ip,
          userId: req.userId,
          apiKey: req.apiKey,
          resource: req.resource,
          hits: req.hits,
          requestId: req.requestId,
          path: req.path,
          userAgent: req.userAgent,
          host: req.host,
        }),
      ),
    ),
    checkCommandQuota: unimplemented('CheckCommandQuota'),
    recordExecution: unimplemented('RecordExecution'),
    getQuotaStatus: unimplemented('GetQuotaStatus'),
    reportLoad: unimplemented('ReportLoad'),
    watchLoad: (call: { emit: (e: string, err: unknown) => void }) => {
      call.emit('error', {
        code: status.UNIMPLEMENTED,
        details: 'WatchLoad is not implemented yet',
      });
    },
  };
}

function checkLimitResponse(result: CheckLimitResult): CheckLimitResponse {
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
