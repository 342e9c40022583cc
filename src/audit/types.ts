/** Where a denial came from. */
export type ViolationSource = 'check_limit' | 'command_quota';

/** What GetViolations reads: a time range and optional filters. */
export interface ViolationFilter {
  /** Inclusive. */
  readonly since: Date;
  /** Exclusive. */
  readonly until: Date;
  readonly rule?: string;
  readonly userId?: string;
  /** Canonical (as CheckLimit counts it). */
  readonly ip?: string;
  /** Recent entries at most. */
  readonly limit: number;
}

/** What a violation records of its denials, whether waiting to be written or stored. */
export interface ViolationFields {
  readonly count: number;
  readonly source: ViolationSource;
  readonly rule: string;
  readonly scope: string;
  /** '' for denials whose details were folded away (buffer full). For api_key, a hash prefix. */
  readonly key: string;
  readonly ip: string | null;
  readonly userId: string | null;
  /** 12 characters of the digest of the API key's keyed hash; never the key. */
  readonly apiKeyPrefix: string | null;
  readonly path: string | null;
  readonly userAgent: string | null;
  readonly host: string | null;
  readonly reason: string | null;
}

/** One stored row: `count` identical denials between firstAt and lastAt. */
export interface ViolationRow extends ViolationFields {
  readonly firstAt: Date;
  readonly lastAt: Date;
}

export type AttackKind = 'repeated_denials' | 'identity_spread';

/** The scopes an attack block applies to: a caller's IP, user or API key. */
export type BlockScope = 'ip' | 'user' | 'api_key';

export interface AttackPattern {
  readonly kind: AttackKind;
  readonly scope: string;
  readonly key: string;
  readonly count: number;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
  /** Null: flagged, not blocked. */
  readonly blockedUntil: Date | null;
}

export interface ViolationReport {
  readonly total: number;
  /** Most first. */
  readonly byRule: readonly { readonly rule: string; readonly count: number }[];
  /** The most denied keys, most first. */
  readonly topKeys: readonly {
    readonly scope: string;
    readonly key: string;
    readonly count: number;
  }[];
  /** Oldest first. */
  readonly perHour: readonly { readonly hour: Date; readonly count: number }[];
  /** Newest first. */
  readonly attacks: readonly AttackPattern[];
  /** Newest first. */
  readonly recent: readonly ViolationRow[];
}

export interface StatsFilter {
  readonly since: Date;
  readonly until: Date;
  /** Only this rule or command type. */
  readonly name?: string;
}

/** Decisions counted for one rule (kind 'rule') or command type (kind 'command'). */
export interface DecisionTally {
  readonly kind: 'rule' | 'command';
  /** '*' counts every call of its kind. */
  readonly name: string;
  readonly allowed: number;
  readonly denied: number;
  readonly shadowDenied: number;
  readonly degraded: number;
}

export interface DecisionCounts extends DecisionTally {
  /** Start of the hour; null in totals. */
  readonly hour: Date | null;
}

export interface StatsReport {
  /** Oldest first. */
  readonly hours: readonly DecisionCounts[];
  readonly totals: readonly DecisionCounts[];
}

/** What operators read of the audit: GetViolations, GetStats and the dashboard. */
export interface AuditReports {
  /** Throws ValidationError naming the field for a bad filter. */
  violations(filter: ViolationFilter): Promise<ViolationReport>;
  stats(filter: StatsFilter): Promise<StatsReport>;
}
