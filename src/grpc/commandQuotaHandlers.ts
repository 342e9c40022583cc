import type { CommandQuotaService } from '../quotas/CommandQuotaService.js';
import type { QuotaAdmin } from '../quotas/QuotaAdmin.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import type { QuotaServiceServer } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import {
  checkCommandQuotaFromProto,
  checkCommandQuotaToProto,
  commandRuleFromProto,
  commandRuleToProto,
  quotaStatusToProto,
  recordExecutionFromProto,
  ruleFilterFromProto,
  ruleUserFromProto,
} from './commandQuotaMapping.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { ADMIN_SERVICE, QUOTA_SERVICE } from './services.js';

/** The command-quota capability's methods of both services. */
export interface CommandQuotaHandlers {
  readonly quota: Pick<
    QuotaServiceServer,
    'checkCommandQuota' | 'recordExecution' | 'getQuotaStatus'
  >;
  readonly admin: Pick<
    AdminServiceServer,
    | 'upsertCommandQuotaRule'
    | 'listCommandQuotaRules'
    | 'deleteCommandQuotaRule'
    | 'setUserTier'
    | 'getUserTier'
  >;
}

/** Each handler maps the request, calls one domain function, maps the result. */
export function commandQuotaHandlers(
  services: { readonly quotas: CommandQuotaService; readonly admin: QuotaAdmin },
  deps: HandlerDeps,
): CommandQuotaHandlers {
  const { quotas, admin } = services;
  return {
    quota: {
      checkCommandQuota: handleUnary(QUOTA_SERVICE, 'CheckCommandQuota', deps, async (req) =>
        checkCommandQuotaToProto(await quotas.check(checkCommandQuotaFromProto(req))),
      ),
      recordExecution: handleUnary(QUOTA_SERVICE, 'RecordExecution', deps, async (req) =>
        quotas.record(recordExecutionFromProto(req)),
      ),
      getQuotaStatus: handleUnary(QUOTA_SERVICE, 'GetQuotaStatus', deps, async (req) =>
        quotaStatusToProto(await quotas.status(req.userId)),
      ),
    },
    admin: {
      upsertCommandQuotaRule: handleUnary(
        ADMIN_SERVICE,
        'UpsertCommandQuotaRule',
        deps,
        async (req) => ({
          rule: commandRuleToProto(await admin.upsertRule(commandRuleFromProto(req.rule))),
        }),
      ),
      listCommandQuotaRules: handleUnary(
        ADMIN_SERVICE,
        'ListCommandQuotaRules',
        deps,
        async (req) => ({
          rules: (await admin.listRules(ruleFilterFromProto(req))).map(commandRuleToProto),
        }),
      ),
      deleteCommandQuotaRule: handleUnary(
        ADMIN_SERVICE,
        'DeleteCommandQuotaRule',
        deps,
        async (req) => {
          await admin.deleteRule(ruleUserFromProto(req.userId), req.commandType);
          return {};
        },
      ),
      setUserTier: handleUnary(ADMIN_SERVICE, 'SetUserTier', deps, async (req) => ({
        userId: req.userId,
        tier: await admin.setTier(req.userId, req.tier),
      })),
      getUserTier: handleUnary(ADMIN_SERVICE, 'GetUserTier', deps, async (req) => ({
        userId: req.userId,
        tier: await admin.getTier(req.userId),
      })),
    },
  };
}
