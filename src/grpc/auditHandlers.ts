import type { AttackBlockAdmin } from '../audit/AttackBlockAdmin.js';
import type { AuditReports } from '../audit/types.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  attackToProto,
  statsFilterFromProto,
  statsReportToProto,
  violationFilterFromProto,
  violationReportToProto,
} from './auditMapping.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { ADMIN_SERVICE } from './services.js';

/** The audit's methods of AdminService. */
export interface AuditHandlers {
  readonly admin: Pick<AdminServiceServer, 'getViolations' | 'getStats' | 'liftBlock'>;
}

/** Each handler maps the request, calls one domain function, maps the result. */
export function auditHandlers(
  services: { readonly reports: AuditReports; readonly blocks: AttackBlockAdmin },
  deps: HandlerDeps,
): AuditHandlers {
  const { reports, blocks } = services;
  return {
    admin: {
      getViolations: handleUnary(ADMIN_SERVICE, 'GetViolations', deps, async (req) =>
        violationReportToProto(await reports.violations(violationFilterFromProto(req))),
      ),
      getStats: handleUnary(ADMIN_SERVICE, 'GetStats', deps, async (req) =>
        statsReportToProto(await reports.stats(statsFilterFromProto(req))),
      ),
      // proto3's empty scope or key reaches the domain as it is: it refuses it by name.
      liftBlock: handleUnary(ADMIN_SERVICE, 'LiftBlock', deps, async (req) => ({
        lifted: (await blocks.lift(req.scope, req.key)).map(attackToProto),
      })),
    },
  };
}
