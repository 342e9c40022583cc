import type {
  HistoryRow,
  HostSnapshot,
  HourlySummary,
  Thresholds,
  ThrottleEvent,
  TrendRow,
} from './types.js';

/**
 * Reads a host's load. Called once per interval by one loop per process, never per caller:
 * implementations may be slow (hundreds of ms) and may block the event loop briefly.
 */
export interface LoadSampler {
  sample(): Promise<Omit<HostSnapshot, 'host'>>;
}

/** A stored latest snapshot with its age by the store's clock. */
export interface StoredSnapshot extends HostSnapshot {
  readonly throttleFactor: number;
  /** Time since it was written, in ms, by the store's clock. */
  readonly ageMs: number;
}

/**
 * The cluster's latest snapshot per host. MUST tell every replica sharing the store of each
 * write (through `onWritten`) and record a throttle event for each change of a host's factor
 * exactly once. Throws StoreUnavailableError when the store does not answer.
 */
export interface LoadStore {
  /** Writes a snapshot; `at` null means the store's clock. Returns the time stored. */
  write(
    snapshot: Omit<HostSnapshot, 'at'> & { at: Date | null },
    factor: number,
  ): Promise<{ at: Date; previousFactor: number }>;
  /** Latest snapshots written within `maxAgeMs`, of `hosts` (all when undefined). */
  latest(maxAgeMs: number, hosts?: readonly string[]): Promise<StoredSnapshot[]>;
}

/** Load history and the admin queries over it. */
export interface LoadHistoryStore {
  append(rows: readonly HistoryRow[]): Promise<void>;
  /** Per host and metric (cpu_percent, memory_percent, disk_percent, load_avg_1m). */
  trend(minutes: number, hosts: readonly string[] | undefined): Promise<TrendRow[]>;
  /** Per hour and host, newest first. */
  hourly(hours: number, hosts: readonly string[] | undefined): Promise<HourlySummary[]>;
}

/** Thresholds set by operators, and the throttle event log. */
export interface ThrottleStore {
  /** The stored thresholds, or null when none were set (the env defaults apply). */
  getThresholds(): Promise<Thresholds | null>;
  /** Stores them and tells every replica (the change feed's payload "throttle_thresholds"). */
  setThresholds(thresholds: Thresholds): Promise<void>;
  /** Newest first. */
  listEvents(host: string | undefined, limit: number): Promise<ThrottleEvent[]>;
}
