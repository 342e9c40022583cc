import type { DashboardView } from '../dashboard/Dashboard.js';
import type { GetDashboardResponse } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { attackToProto, countsToProto } from './auditMapping.js';
import { directionToProto, healthToProto } from './loadMapping.js';

export function dashboardToProto(v: DashboardView): GetDashboardResponse {
  return {
    at: v.at,
    databaseAvailable: v.databaseAvailable,
    hosts: v.hosts.map((h) => ({
      host: h.host,
      state: healthToProto(h.state),
      reasons: [...h.reasons],
      throttleFactor: h.throttleFactor,
      at: h.at,
    })),
    trends: v.trends.map((t) => ({ ...t, direction: directionToProto(t.direction) })),
    topViolators: v.topViolators.map((k) => ({ ...k })),
    attacks: v.attacks.map(attackToProto),
    stats: v.stats.map(countsToProto),
    quotaUsage: v.quotaUsage.map((u) => ({ ...u })),
    topUsers: v.topUsers.map((u) => ({ ...u })),
    violations: v.violations,
  };
}
