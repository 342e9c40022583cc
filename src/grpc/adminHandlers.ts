import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { RuleAdmin } from '../limits/RuleAdmin.js';
import type { LoadAdmin } from '../load/LoadAdmin.js';
import { Scope } from '../../clients/typescript/src/gen/quota/v1/types.js';
import type {
  DeleteRateLimitRuleRequest,
  DeleteRateLimitRuleResponse,
  GetHourlySummaryRequest,
  GetHourlySummaryResponse,
  GetLoadTrendRequest,
  GetLoadTrendResponse,
  GetResourceHealthRequest,
  GetResourceHealthResponse,
  GetThrottleThresholdsResponse,
  ListThrottleEventsRequest,
  ListThrottleEventsResponse,
  SetThrottleThresholdsRequest,
  SetThrottleThresholdsResponse,
  ListRateLimitRulesRequest,
  ListRateLimitRulesResponse,
  SetRateLimitRuleEnabledRequest,
  SetRateLimitRuleEnabledResponse,
  UpsertRateLimitRuleRequest,
  UpsertRateLimitRuleResponse,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { handleUnary, type HandlerDeps } from './handleUnary.js';
import { directionToProto, healthToProto } from './loadMapping.js';
import { ruleFromProto, ruleToProto, scopeFromProto } from './ruleMapping.js';

export interface AdminHandlerServices {
  readonly rules: RuleAdmin;
  readonly load: LoadAdmin;
}

/** AdminService handlers. */
export function adminHandlers(
  services: AdminHandlerServices,
  deps: HandlerDeps,
): UntypedServiceImplementation {
  return {
    upsertRateLimitRule: handleUnary(
      'UpsertRateLimitRule',
      deps,
      async (req: UpsertRateLimitRuleRequest): Promise<UpsertRateLimitRuleResponse> => ({
        rule: ruleToProto(await services.rules.upsert(ruleFromProto(req.rule))),
      }),
    ),
    listRateLimitRules: handleUnary(
      'ListRateLimitRules',
      deps,
      async (req: ListRateLimitRulesRequest): Promise<ListRateLimitRulesResponse> => {
        const scope =
          req.scope === Scope.SCOPE_UNSPECIFIED ? undefined : scopeFromProto(req.scope, 'scope');
        return { rules: (await services.rules.list(scope)).map(ruleToProto) };
      },
    ),
    setRateLimitRuleEnabled: handleUnary(
      'SetRateLimitRuleEnabled',
      deps,
      async (req: SetRateLimitRuleEnabledRequest): Promise<SetRateLimitRuleEnabledResponse> => ({
        rule: ruleToProto(await services.rules.setEnabled(req.name, req.enabled)),
      }),
    ),
    deleteRateLimitRule: handleUnary(
      'DeleteRateLimitRule',
      deps,
      async (req: DeleteRateLimitRuleRequest): Promise<DeleteRateLimitRuleResponse> => {
        await services.rules.delete(req.name);
        return {};
      },
    ),
    setThrottleThresholds: handleUnary(
      'SetThrottleThresholds',
      deps,
      async (req: SetThrottleThresholdsRequest): Promise<SetThrottleThresholdsResponse> => ({
        thresholds: await services.load.setThresholds(req.thresholds),
      }),
    ),
    getThrottleThresholds: handleUnary(
      'GetThrottleThresholds',
      deps,
      async (): Promise<GetThrottleThresholdsResponse> => ({
        thresholds: { ...services.load.getThresholds() },
      }),
    ),
    getResourceHealth: handleUnary(
      'GetResourceHealth',
      deps,
      async (req: GetResourceHealthRequest): Promise<GetResourceHealthResponse> => ({
        hosts: services.load.health(req.hosts).map((h) => ({
          host: h.host,
          state: healthToProto(h.state),
          reasons: [...h.reasons],
          throttleFactor: h.throttleFactor,
          at: h.at,
        })),
      }),
    ),
    getLoadTrend: handleUnary(
      'GetLoadTrend',
      deps,
      async (req: GetLoadTrendRequest): Promise<GetLoadTrendResponse> => ({
        trends: (await services.load.trend(req.minutes, req.hosts)).map((t) => ({
          ...t,
          direction: directionToProto(t.direction),
        })),
      }),
    ),
    getHourlySummary: handleUnary(
      'GetHourlySummary',
      deps,
      async (req: GetHourlySummaryRequest): Promise<GetHourlySummaryResponse> => ({
        hours: await services.load.hourly(req.hours, req.hosts),
      }),
    ),
    listThrottleEvents: handleUnary(
      'ListThrottleEvents',
      deps,
      async (req: ListThrottleEventsRequest): Promise<ListThrottleEventsResponse> => ({
        events: await services.load.events(req.host, req.limit),
      }),
    ),
  };
}
