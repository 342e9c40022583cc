import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import type { RuleAdmin } from '../limits/RuleAdmin.js';
import { Scope } from '../../clients/typescript/src/gen/quota/v1/types.js';
import type {
  DeleteRateLimitRuleRequest,
  DeleteRateLimitRuleResponse,
  ListRateLimitRulesRequest,
  ListRateLimitRulesResponse,
  SetRateLimitRuleEnabledRequest,
  SetRateLimitRuleEnabledResponse,
  UpsertRateLimitRuleRequest,
  UpsertRateLimitRuleResponse,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { handleUnary, type HandlerDeps } from './handleUnary.js';
import { ruleFromProto, ruleToProto, scopeFromProto } from './ruleMapping.js';
import { StatusError } from './toStatus.js';

export interface AdminHandlerServices {
  readonly rules: RuleAdmin;
}

/** AdminService handlers. */
export function adminHandlers(
  services: AdminHandlerServices,
  deps: HandlerDeps,
): UntypedServiceImplementation {
  const unimplemented = (method: string) =>
    handleUnary(method, deps, async () => {
      throw new StatusError(status.UNIMPLEMENTED, `${method} is not implemented yet`);
    });
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
    setThrottleThresholds: unimplemented('SetThrottleThresholds'),
    getThrottleThresholds: unimplemented('GetThrottleThresholds'),
    getResourceHealth: unimplemented('GetResourceHealth'),
    getLoadTrend: unimplemented('GetLoadTrend'),
    getHourlySummary: unimplemented('GetHourlySummary'),
    listThrottleEvents: unimplemented('ListThrottleEvents'),
  };
}
