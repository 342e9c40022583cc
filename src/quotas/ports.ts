import type {
  CommandQuotaRule,
  ExecutionStatus,
  ExecutionSummary,
  PeriodLimits,
  QuotaPeriod,
  TierName,
} from './types.js';

/** One decision for the store: the limits are the user's, the tier applied. */
export interface QuotaDecisionRequest {
  readonly userId: string;
  readonly commandType: string;
  readonly cost: number;
  readonly limits: PeriodLimits;
  /** Makes the decision idempotent: a repeated key returns the first answer. */
  readonly idempotencyKey: string | null;
  readonly timezone: string;
  /** An admitted command's reservation expires (stays counted) after this, in seconds. */
  readonly reservationTtlS: number;
}

/** A period's usage as the store counted it. */
export interface PeriodCount {
  readonly period: QuotaPeriod;
  readonly used: number;
  readonly resetsAt: Date;
}

export interface QuotaDecision {
  readonly allowed: boolean;
  /** A replay of the answer first given for the same idempotency key. */
  readonly replayed: boolean;
  /** The periods that denied, in daily, weekly, monthly order; empty when allowed. */
  readonly exhausted: readonly QuotaPeriod[];
  /** Daily, weekly, monthly: usage after the decision. */
  readonly periods: readonly PeriodCount[];
  readonly reservationId: string | null;
}

/** A validated RecordExecution call for the store. */
export interface ExecutionRecord {
  readonly reservationId: string | null;
  readonly idempotencyKey: string | null;
  readonly userId: string;
  readonly commandType: string;
  readonly host: string;
  readonly startedAt: Date | null;
  readonly durationMs: number;
  readonly cpuPercent: number;
  readonly memoryBytes: number;
  readonly exitCode: number;
  readonly status: ExecutionStatus;
  readonly timezone: string;
}

/** One command type's usage in the current periods. */
export interface CommandUsage {
  readonly commandType: string;
  /** Daily, weekly, monthly. */
  readonly periods: readonly PeriodCount[];
}

/** The current periods (their resetsAt; used 0) and a user's usage in them. */
export interface CurrentUsage {
  readonly bounds: readonly PeriodCount[];
  readonly commands: readonly CommandUsage[];
}

/**
 * Command quota decisions and accounting. Decisions MUST be atomic across every replica that
 * shares the store (all three periods or none), durable once answered, use the store's clock,
 * and return the first answer again for a repeated idempotency key. Throws StoreUnavailableError
 * when the store does not answer in time.
 */
export interface CommandQuotaStore {
  decide(request: QuotaDecisionRequest): Promise<QuotaDecision>;
  /**
   * Stores an execution durably and settles its reservation, giving the units back for a
   * refunded status; without a reservation, counts it. Idempotent on the key. Throws
   * NotFoundError for an unknown reservation, PreconditionError for one of another user or
   * command type or already settled, and writes nothing then.
   */
  record(execution: ExecutionRecord): Promise<{ executionId: string }>;
  /** The periods' bounds now (resetsAt) and the user's usage in them, per command type. */
  usage(userId: string, timezone: string): Promise<CurrentUsage>;
  /** Figures of the user's executions in the last 24 h, per command type and in total. */
  recent(userId: string): Promise<{
    readonly total: ExecutionSummary;
    readonly byCommandType: ReadonlyMap<string, ExecutionSummary>;
  }>;
}

/** Persistence of command quota rules; a change is announced on the change feed. */
export interface CommandRuleStore {
  list(): Promise<CommandQuotaRule[]>;
  /** Creates or replaces the rule of (userId, commandType). */
  upsert(rule: CommandQuotaRule): Promise<CommandQuotaRule>;
  /** Throws NotFoundError when there is no such rule. */
  delete(userId: string, commandType: string): Promise<void>;
}

/** Persistence of users' tiers; users without one are `default`. */
export interface TierStore {
  /** Every user whose tier is not default. */
  list(): Promise<Map<string, TierName>>;
  get(userId: string): Promise<TierName>;
  set(userId: string, tier: TierName): Promise<void>;
}

/** Expiry of command quota state. MAY run on any replica; callers make it one at a time. */
export interface QuotaMaintenance {
  /** Deletes reservations long expired or settled, and usage of long-gone periods. */
  deleteExpired(): Promise<{ reservations: number; usage: number }>;
}

/** Units of one command type counted in the current periods, over every user. */
export interface FleetCommandUsage {
  readonly commandType: string;
  readonly usedToday: number;
  readonly usedThisWeek: number;
  readonly usedThisMonth: number;
  /** Users with units counted today. */
  readonly usersToday: number;
}

/** What the fleet has used of its command quotas now: the operators' overview. */
export interface QuotaUsageOverview {
  /** Database clock at the read. */
  readonly at: Date;
  /** By command type. */
  readonly byCommandType: readonly FleetCommandUsage[];
  /** The users with the most units today, most first. */
  readonly topUsers: readonly {
    readonly userId: string;
    readonly commandType: string;
    readonly usedToday: number;
  }[];
}

/** Reads the fleet's usage in the current periods of `timezone`. */
export interface QuotaUsageReader {
  overview(timezone: string, topUsers: number): Promise<QuotaUsageOverview>;
}
