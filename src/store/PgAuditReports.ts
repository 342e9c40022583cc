import type { AuditReportStore } from '../audit/ports.js';
import type {
  DecisionCounts,
  StatsFilter,
  StatsReport,
  ViolationFilter,
  ViolationReport,
  ViolationRow,
  ViolationSource,
} from '../audit/types.js';
import { attackFromRow, type StoredAttack } from './attackRow.js';
import type { Database } from './Database.js';

/** The most denied keys a report lists. */
const TOP_KEYS = 20;
/** Attack patterns a report lists at most, newest first. */
const MAX_ATTACKS = 1000;

/** A timestamptz as epoch ms, which JSON carries exactly. */
const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`;
/** The start of a time's hour, in epoch ms: UTC hours, whatever the session's time zone. */
const hourMs = (col: string) => `(floor(extract(epoch FROM ${col}) / 3600) * 3600000)::float8`;

interface StoredViolation {
  first_at: number;
  last_at: number;
  count: string;
  source: ViolationSource;
  rule: string;
  scope: string;
  key: string;
  ip: string | null;
  user_id: string | null;
  api_key_prefix: string | null;
  path: string | null;
  user_agent: string | null;
  host: string | null;
  reason: string | null;
}

interface StoredCounts {
  hour: number | null;
  kind: 'rule' | 'command';
  name: string;
  allowed: string;
  denied: string;
  shadow_denied: string;
  degraded: string;
}

/**
 * The reads behind GetViolations and GetStats. Each report is one statement, so its parts
 * (totals, lists) agree: they are read from one snapshot. A violation row is in a range when
 * its last denial is; counts go through JSON as text (bigint).
 */
export class PgAuditReports implements AuditReportStore {
  constructor(private readonly db: Database) {}

  async violations(f: ViolationFilter): Promise<ViolationReport> {
    const result = await this.db.report<{
      total: string;
      by_rule: { rule: string; count: string }[];
      top_keys: { scope: string; key: string; count: string }[];
      per_hour: { hour: number; count: string }[];
      attacks: StoredAttack[];
      recent: StoredViolation[];
    }>(
      `WITH v AS (
         SELECT * FROM violations
          WHERE last_at >= $1 AND last_at < $2
            AND ($3::text IS NULL OR rule = $3)
            AND ($4::text IS NULL OR user_id = $4)
            AND ($5::text IS NULL OR ip = $5))
       SELECT
         (SELECT coalesce(sum(count), 0)::text FROM v) AS total,
         (SELECT coalesce(json_agg(json_build_object('rule', rule, 'count', n::text)
                                   ORDER BY n DESC, rule), '[]')
            FROM (SELECT rule, sum(count) AS n FROM v GROUP BY rule) r) AS by_rule,
         (SELECT coalesce(json_agg(json_build_object('scope', scope, 'key', key, 'count', n::text)
                                   ORDER BY n DESC, scope, key), '[]')
            FROM (SELECT scope, key, sum(count) AS n FROM v WHERE key <> ''
                   GROUP BY scope, key ORDER BY n DESC, scope, key LIMIT ${TOP_KEYS}) k) AS top_keys,
         (SELECT coalesce(json_agg(json_build_object('hour', h, 'count', n::text) ORDER BY h), '[]')
            FROM (SELECT ${hourMs('last_at')} AS h, sum(count) AS n FROM v GROUP BY 1) p) AS per_hour,
         (SELECT coalesce(json_agg(a ORDER BY a.last_seen DESC, a.kind, a.scope, a.key), '[]')
            FROM (SELECT kind, scope, key, count::text AS count, ${ms('first_seen')} AS first_seen,
                         ${ms('last_seen')} AS last_seen, ${ms('blocked_until')} AS blocked_until
                    FROM attack_flags
                   WHERE last_seen >= $1 AND first_seen < $2
                   ORDER BY attack_flags.last_seen DESC, kind, scope, key
                   LIMIT ${MAX_ATTACKS}) a) AS attacks,
         (SELECT coalesce(json_agg(r ORDER BY r.last_at DESC, r.id DESC), '[]')
            FROM (SELECT id, ${ms('first_at')} AS first_at, ${ms('last_at')} AS last_at,
                         count::text AS count, source, rule, scope, key, ip, user_id,
                         api_key_prefix, path, user_agent, host, reason
                    FROM v ORDER BY v.last_at DESC, v.id DESC LIMIT $6) r) AS recent`,
      [f.since, f.until, f.rule ?? null, f.userId ?? null, f.ip ?? null, f.limit],
    );
    const row = result.rows[0]!;
    return {
      total: Number(row.total),
      byRule: row.by_rule.map((r) => ({ rule: r.rule, count: Number(r.count) })),
      topKeys: row.top_keys.map((k) => ({ scope: k.scope, key: k.key, count: Number(k.count) })),
      perHour: row.per_hour.map((h) => ({ hour: new Date(h.hour), count: Number(h.count) })),
      attacks: row.attacks.map(attackFromRow),
      recent: row.recent.map(toViolation),
    };
  }

  async stats(f: StatsFilter): Promise<StatsReport> {
    const sums = `sum(allowed)::text AS allowed, sum(denied)::text AS denied,
                  sum(shadow_denied)::text AS shadow_denied, sum(degraded)::text AS degraded`;
    const result = await this.db.report<{ hours: StoredCounts[]; totals: StoredCounts[] }>(
      `WITH s AS (
         SELECT * FROM decision_stats
          WHERE hour >= to_timestamp(floor(extract(epoch FROM $1::timestamptz) / 3600) * 3600)
            AND hour < $2 AND ($3::text IS NULL OR name = $3))
       SELECT
         (SELECT coalesce(json_agg(h ORDER BY h.hour, h.kind, h.name), '[]')
            FROM (SELECT ${ms('hour')} AS hour, kind, name, ${sums}
                    FROM s GROUP BY s.hour, kind, name) h) AS hours,
         (SELECT coalesce(json_agg(t ORDER BY t.kind, t.name), '[]')
            FROM (SELECT NULL::float8 AS hour, kind, name, ${sums}
                    FROM s GROUP BY kind, name) t) AS totals`,
      [f.since, f.until, f.name ?? null],
    );
    const row = result.rows[0]!;
    return { hours: row.hours.map(toCounts), totals: row.totals.map(toCounts) };
  }
}

function toViolation(r: StoredViolation): ViolationRow {
  return {
    firstAt: new Date(r.first_at),
    lastAt: new Date(r.last_at),
    count: Number(r.count),
    source: r.source,
    rule: r.rule,
    scope: r.scope,
    key: r.key,
    ip: r.ip,
    userId: r.user_id,
    apiKeyPrefix: r.api_key_prefix,
    path: r.path,
    userAgent: r.user_agent,
    host: r.host,
    reason: r.reason,
  };
}

function toCounts(c: StoredCounts): DecisionCounts {
  return {
    hour: c.hour === null ? null : new Date(c.hour),
    kind: c.kind,
    name: c.name,
    allowed: Number(c.allowed),
    denied: Number(c.denied),
    shadowDenied: Number(c.shadow_denied),
    degraded: Number(c.degraded),
  };
}
