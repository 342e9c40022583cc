import type { DashboardView } from '../dashboard/Dashboard.js';
import {
  AttackKind,
  type AttackPattern,
  type DecisionStats,
  type GetDashboardResponse,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import type { AttackPattern as DomainAttack, DecisionCounts } from '../audit/types.js';
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
    stats: v.stats.map(decisionCountsToProto),
    quotaUsage: v.quotaUsage.map((u) => ({ ...u })),
    topUsers: v.topUsers.map((u) => ({ ...u })),
    violations: v.violations,
  };
}

// TODO(lead): use the audit mapping's functions once it lands.
function attackToProto(a: DomainAttack): AttackPattern {
  return {
    kind:
      a.kind === 'repeated_denials'
        ? AttackKind.ATTACK_KIND_REPEATED_DENIALS
        : AttackKind.ATTACK_KIND_IDENTITY_SPREAD,
    scope: a.scope,
    key: a.key,
    count: a.count,
    firstSeen: a.firstSeen,
    lastSeen: a.lastSeen,
    blockedUntil: a.blockedUntil ?? undefined,
  };
}

function decisionCountsToProto(c: DecisionCounts): DecisionStats {
  return { ...c, hour: c.hour ?? undefined };
}
