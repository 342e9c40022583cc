/** A calendar period of a command quota, aligned in the configured time zone. */
export type QuotaPeriod = 'daily' | 'weekly' | 'monthly';
export const QUOTA_PERIODS: readonly QuotaPeriod[] = ['daily', 'weekly', 'monthly'];

/** A user's tier: scales the limits of every command quota rule that applies to them. */
export type TierName = 'default' | 'premium' | 'enterprise';
export const TIER_NAMES: readonly TierName[] = ['default', 'premium', 'enterprise'];

/** What a tier does to limits and delays. */
export interface Tier {
  readonly name: TierName;
  /** Limits are multiplied by this; null: unlimited. */
  readonly multiplier: number | null;
  /** Whether a loaded host delays this tier's commands. */
  readonly delayed: boolean;
}

/** Per period: commands admitted, or null for no limit in that period. */
export type PeriodLimits = Readonly<Record<QuotaPeriod, number | null>>;

/**
 * A command quota rule: limits of one command type for one user, or for every user ("*"), or
 * for every command type without a rule of its own ("*").
 */
export interface CommandQuotaRule {
  readonly userId: string;
  readonly commandType: string;
  readonly limits: PeriodLimits;
  /** Estimated CPU use of one command, in percent of one core. */
  readonly cpuEstimatePercent: number;
  /** Estimated peak memory of one command, in bytes. */
  readonly memoryEstimateBytes: number;
}

/** One CheckCommandQuota call. */
export interface CommandQuotaInput {
  readonly userId: string;
  readonly commandType: string;
  readonly host?: string;
  readonly requestId?: string;
  /** Units the command consumes from each period, at least 1. */
  readonly cost: number;
}

/** A period's figures for one user and command type. */
export interface PeriodUsage {
  readonly period: QuotaPeriod;
  /** Commands admitted per period for the user's tier; null when unlimited. */
  readonly limit: number | null;
  readonly used: number;
  /** Commands still admitted; null when unlimited. */
  readonly remaining: number | null;
  /** Start of the next period. */
  readonly resetsAt: Date;
}

/** Why a command was denied. */
/** QUOTA_UNAVAILABLE: the failure mode `closed` while the store does not answer. */
export type DenialReason = `QUOTA_EXCEEDED: ${string}` | 'SYSTEM_OVERLOADED' | 'QUOTA_UNAVAILABLE';

export interface CommandQuotaResult {
  readonly allowed: boolean;
  /** Set when denied. */
  readonly reason: DenialReason | null;
  /** Daily, weekly and monthly, in that order; empty for the failure mode's answer. */
  readonly periods: readonly PeriodUsage[];
  readonly tier: TierName;
  readonly throttleFactor: number;
  /** Wait before running the command, in ms. */
  readonly delayMs: number;
  /** Identifies the admitted command for RecordExecution; null when denied or degraded. */
  readonly reservationId: string | null;
  readonly degraded: boolean;
}

/** Outcome of a command that ran (or did not). */
export type ExecutionStatus = 'completed' | 'failed' | 'timeout' | 'cancelled' | 'not_started';
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = [
  'completed',
  'failed',
  'timeout',
  'cancelled',
  'not_started',
];

/** Statuses whose command never ran to use its units: a reservation settled so gives them back. */
export const REFUNDED_STATUSES: ReadonlySet<ExecutionStatus> = new Set([
  'cancelled',
  'not_started',
]);

/** One RecordExecution call. */
export interface ExecutionInput {
  readonly reservationId?: string;
  readonly requestId?: string;
  readonly userId: string;
  readonly commandType: string;
  readonly host?: string;
  /** Unset: the time of the call (the database's). */
  readonly startedAt?: Date;
  readonly durationMs: number;
  readonly cpuPercent: number;
  readonly memoryBytes: number;
  readonly exitCode: number;
  /** One of EXECUTION_STATUSES; empty means completed. Checked by the service. */
  readonly status: string;
}

/** Figures of executions over a span (the last 24 h). Durations in ms. */
export interface ExecutionSummary {
  readonly count: number;
  /** Non-zero exit code or a status other than completed. */
  readonly failures: number;
  readonly averageDurationMs: number;
  readonly p95DurationMs: number;
  readonly averageCpuPercent: number;
  readonly maxMemoryBytes: number;
}

/** The figures of no executions at all. */
export const NO_EXECUTIONS: ExecutionSummary = {
  count: 0,
  failures: 0,
  averageDurationMs: 0,
  p95DurationMs: 0,
  averageCpuPercent: 0,
  maxMemoryBytes: 0,
};

export interface CommandQuotaStatus {
  readonly commandType: string;
  readonly periods: readonly PeriodUsage[];
  readonly recent: ExecutionSummary;
}

export interface QuotaStatus {
  readonly userId: string;
  readonly tier: TierName;
  readonly commands: readonly CommandQuotaStatus[];
  /** Every command type together. */
  readonly recent: ExecutionSummary;
}
