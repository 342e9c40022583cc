import type { LimitService } from '../limits/LimitService.js';
import type { RuleAdmin } from '../limits/RuleAdmin.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import type { QuotaServiceServer } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { Scope } from '../../clients/typescript/src/gen/quota/v1/types.js';
import type { Logger } from '../log.js';
import { checkLimitFromProto, checkLimitToProto } from './checkLimitMapping.js';
import { checkLimitsFromProto, checkLimitsToProto, type ItemFailed } from './checkLimitsMapping.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { ruleFromProto, ruleToProto, scopeFromProto } from './ruleMapping.js';
import { ADMIN_SERVICE, QUOTA_SERVICE } from './services.js';

/** The rate-limit capability's methods of both services. */
export interface LimitHandlers {
  readonly quota: Pick<QuotaServiceServer, 'checkLimit' | 'checkLimits'>;
  readonly admin: Pick<
    AdminServiceServer,
    'upsertRateLimitRule' | 'listRateLimitRules' | 'setRateLimitRuleEnabled' | 'deleteRateLimitRule'
  >;
}

/** Each handler maps the request, calls one domain function, maps the result. */
export function limitHandlers(
  services: { readonly limits: LimitService; readonly rules: RuleAdmin },
  deps: HandlerDeps,
  logger?: Logger,
  onItemError?: (method: string, code: number) => void,
): LimitHandlers {
  const { limits, rules } = services;
  // A check of CheckLimits that fails is counted as a failed call would be (logCalls), and
  // logged when it is a bug.
  const failed: ItemFailed = (err, code, internal) => {
    onItemError?.('CheckLimits', code);
    if (internal) logger?.error({ err, method: 'CheckLimits' }, 'internal error');
  };
  return {
    quota: {
      checkLimit: handleUnary(QUOTA_SERVICE, 'CheckLimit', deps, async (req) =>
        checkLimitToProto(await limits.check(checkLimitFromProto(req))),
      ),
      checkLimits: handleUnary(QUOTA_SERVICE, 'CheckLimits', deps, async (req) =>
        checkLimitsToProto(await limits.checkAll(checkLimitsFromProto(req)), failed),
      ),
    },
    admin: {
      upsertRateLimitRule: handleUnary(ADMIN_SERVICE, 'UpsertRateLimitRule', deps, async (req) => ({
        rule: ruleToProto(await rules.upsert(ruleFromProto(req.rule))),
      })),
      listRateLimitRules: handleUnary(ADMIN_SERVICE, 'ListRateLimitRules', deps, async (req) => {
        const scope =
          req.scope === Scope.SCOPE_UNSPECIFIED ? undefined : scopeFromProto(req.scope, 'scope');
        return { rules: (await rules.list(scope)).map(ruleToProto) };
      }),
      setRateLimitRuleEnabled: handleUnary(
        ADMIN_SERVICE,
        'SetRateLimitRuleEnabled',
        deps,
        async (req) => ({ rule: ruleToProto(await rules.setEnabled(req.name, req.enabled)) }),
      ),
      deleteRateLimitRule: handleUnary(ADMIN_SERVICE, 'DeleteRateLimitRule', deps, async (req) => {
        await rules.delete(req.name);
        return {};
      }),
    },
  };
}
