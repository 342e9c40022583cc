import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { LimitService } from '../limits/LimitService.js';
import type { LoadHub } from '../load/LoadHub.js';
import { validateHosts, validateWatchInterval } from '../load/validateReport.js';
import type { CheckLimitResult } from '../limits/types.js';
import type {
  CheckLimitRequest,
  CheckLimitResponse,
  LoadSnapshot,
  ReportLoadRequest,
  ReportLoadResponse,
  WatchLoadRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { LimitStatus } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { fromDuration, toDuration } from './durations.js';
import { handleServerStream } from './handleServerStream.js';
import { handleUnary, type HandlerDeps } from './handleUnary.js';
import { loadSnapshotToProto } from './loadMapping.js';
import { scopeToProto } from './ruleMapping.js';
import { StatusError } from './toStatus.js';

export interface QuotaHandlerServices {
  readonly limits: LimitService;
  readonly load: LoadHub;
}

/** QuotaService: each handler maps the request, calls one domain function, maps the result. */
export function quotaHandlers(
  services: QuotaHandlerServices,
  deps: HandlerDeps & { readonly shutdown?: AbortSignal },
): UntypedServiceImplementation {
  const unimplemented = (method: string) =>
    handleUnary(method, deps, async () => {
      throw new StatusError(status.UNIMPLEMENTED, `${method} is not implemented yet`);
    });
  return {
    checkLimit: handleUnary('CheckLimit', deps, async (req: CheckLimitRequest) =>
      checkLimitResponse(await services.limits.check(req)),
    ),
    checkCommandQuota: unimplemented('CheckCommandQuota'),
    recordExecution: unimplemented('RecordExecution'),
    getQuotaStatus: unimplemented('GetQuotaStatus'),
    reportLoad: handleUnary(
      'ReportLoad',
      deps,
      async (req: ReportLoadRequest): Promise<ReportLoadResponse> => ({
        throttleFactor: await services.load.report(req),
      }),
    ),
    watchLoad: handleServerStream<WatchLoadRequest, LoadSnapshot>(
      'WatchLoad',
      deps,
      async (req: WatchLoadRequest, ctx) => {
        const intervalMs = validateWatchInterval(fromDuration(req.interval));
        const hosts = validateHosts(req.hosts);
        await services.load.watch(
          intervalMs,
          hosts,
          (l) => ctx.send(loadSnapshotToProto(l)),
          ctx.signal,
        );
      },
    ),
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
