import type {
  AttackKind as DomainAttackKind,
  AttackPattern as DomainAttackPattern,
  DecisionCounts,
  StatsFilter,
  StatsReport,
  ViolationFilter,
  ViolationReport,
  ViolationRow,
} from '../audit/types.js';
import {
  AttackKind,
  type AttackPattern,
  type DecisionStats,
  type GetStatsRequest,
  type GetStatsResponse,
  type GetViolationsRequest,
  type GetViolationsResponse,
  type Violation,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';

/** A range with no end ends now; one with no start covers the 24 hours before its end. */
const DEFAULT_RANGE_MS = 24 * 3_600_000;
/** Recent entries when the request says 0. */
const DEFAULT_RECENT = 100;

function range(since: Date | undefined, until: Date | undefined, now: Date) {
  const end = until ?? now;
  return { since: since ?? new Date(end.getTime() - DEFAULT_RANGE_MS), until: end };
}

/** proto3 empty strings are unset filters; the domain checks the values. */
export function violationFilterFromProto(
  req: GetViolationsRequest,
  now = new Date(),
): ViolationFilter {
  return {
    ...range(req.since, req.until, now),
    rule: req.rule || undefined,
    userId: req.userId || undefined,
    ip: req.ip || undefined,
    limit: req.limit || DEFAULT_RECENT,
  };
}

export function statsFilterFromProto(req: GetStatsRequest, now = new Date()): StatsFilter {
  return { ...range(req.since, req.until, now), name: req.name || undefined };
}

export function violationReportToProto(r: ViolationReport): GetViolationsResponse {
  return {
    total: r.total,
    byRule: r.byRule.map((x) => ({ rule: x.rule, count: x.count })),
    topKeys: r.topKeys.map((x) => ({ scope: x.scope, key: x.key, count: x.count })),
    perHour: r.perHour.map((x) => ({ hour: x.hour, count: x.count })),
    attacks: r.attacks.map(attackToProto),
    recent: r.recent.map(violationToProto),
  };
}

export function statsReportToProto(r: StatsReport): GetStatsResponse {
  return { hours: r.hours.map(countsToProto), totals: r.totals.map(countsToProto) };
}

const KIND: Record<DomainAttackKind, AttackKind> = {
  repeated_denials: AttackKind.ATTACK_KIND_REPEATED_DENIALS,
  identity_spread: AttackKind.ATTACK_KIND_IDENTITY_SPREAD,
};

export function attackToProto(a: DomainAttackPattern): AttackPattern {
  return {
    kind: KIND[a.kind] ?? AttackKind.ATTACK_KIND_UNSPECIFIED,
    scope: a.scope,
    key: a.key,
    count: a.count,
    firstSeen: a.firstSeen,
    lastSeen: a.lastSeen,
    blockedUntil: a.blockedUntil ?? undefined,
  };
}

function violationToProto(v: ViolationRow): Violation {
  return {
    firstAt: v.firstAt,
    lastAt: v.lastAt,
    count: v.count,
    source: v.source,
    rule: v.rule,
    scope: v.scope,
    key: v.key,
    ip: v.ip ?? '',
    userId: v.userId ?? '',
    apiKeyPrefix: v.apiKeyPrefix ?? '',
    path: v.path ?? '',
    userAgent: v.userAgent ?? '',
    host: v.host ?? '',
    reason: v.reason ?? '',
  };
}

export function countsToProto(c: DecisionCounts): DecisionStats {
  return {
    hour: c.hour ?? undefined,
    kind: c.kind,
    name: c.name,
    allowed: c.allowed,
    denied: c.denied,
    shadowDenied: c.shadowDenied,
    degraded: c.degraded,
  };
}
