/**
 * One holder at a time across every replica sharing the store. Implementations MUST release
 * the lock when `work` ends (or the holder's connection is lost) and MUST NOT wait for it.
 */
export interface LeaderLock {
  /** Runs `work` if no other replica holds `name`; resolves `{ ran: false }` at once if one does. */
  withLeaderLock<T>(
    name: string,
    work: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }>;
}

/**
 * When each cluster-wide job last ran, on any replica, so that N replicas run a job once per
 * interval between them rather than N times. Callers read and record under the job's
 * LeaderLock. Implementations MUST measure time by the store's clock (never a replica's).
 */
export interface TaskRunLog {
  /** Milliseconds since `name` last ran to completion on any replica; null if it never did. */
  sinceLastRun(name: string): Promise<number | null>;
  /** Records that `name` ran to completion now, on this replica. */
  recordRun(name: string): Promise<void>;
}

/** Days kept of each kind of data, each 1 to 3650. */
export interface RetentionDays {
  /** Recorded command executions. */
  readonly executions: number;
  /** Violations, and attack flags whose block is over. */
  readonly violations: number;
  /** Raw load history and throttle events. */
  readonly loadHistory: number;
  /** Hourly rollups: decision statistics and hourly load. */
  readonly rollups: number;
}

/** Rows deleted, by table name. */
export type DeletedRows = Readonly<Record<string, number>>;

/**
 * Deletes data past retention, and the ids of audit batches written over a day ago (a fixed
 * day: they only guard against a batch resent within seconds). Implementations MUST measure age
 * by the store's clock (never a replica's) in days of 24 hours (never calendar days of the
 * session's time zone, which a daylight-saving change makes 23 or 25 hours long), MUST delete in
 * short batches that skip rows others hold rather than wait for them (no lock cycle with the
 * writers), MUST keep an attack flag whose block is still in force whatever its age, and MUST
 * answer every table they clean, 0 rows included. Deleting is idempotent, but callers run it
 * under one LeaderLock so that replicas do not repeat the work.
 */
export interface RetentionStore {
  deleteOld(days: RetentionDays): Promise<DeletedRows>;
}

/**
 * Keeps hourly load (per host and hour) computed from the raw load history. Implementations
 * MUST recompute each hour from all of its raw samples and replace what was stored for it
 * (running twice is the same as once), weighting each raw row by its sample count, and MUST
 * cover every hour that may have changed since the last run: the recent hours, and after a
 * pause every hour since the newest rolled up that raw history still holds.
 */
export interface LoadRollupStore {
  /** Resolves with the hours recomputed and the (host, hour) rows written. */
  rollUp(): Promise<{ hours: number; rows: number }>;
}
