/** A named piece of background work, run every `intervalMs`. */
export interface Job {
  /** Unique in the registry; also the name of its cluster-wide lock. */
  readonly name: string;
  readonly intervalMs: number;
  /**
   * Run by one replica at a time across the cluster, under one advisory lock, and (with the
   * registry's run log) about once per interval between all the replicas.
   */
  readonly clusterWide: boolean;
  run(): Promise<void>;
  /** Work to do once when the registry stops, after the last run (a final flush). */
  finish?(): Promise<void>;
}

/** What the registry knows of a job. Times are wall-clock; durations in ms. */
export interface JobStatus {
  readonly name: string;
  readonly intervalMs: number;
  readonly clusterWide: boolean;
  /** Runs completed here, failed ones included. */
  readonly runs: number;
  readonly failures: number;
  /** Failures since the last success; each one puts the next run sooner, with backoff. */
  readonly consecutiveFailures: number;
  /**
   * Runs of a cluster-wide job skipped here: another replica held its lock, or (a scheduled run)
   * had run it less than an interval ago.
   */
  readonly skipped: number;
  readonly lastRunAt: Date | null;
  readonly lastDurationMs: number | null;
  /** Message of the last failure, cleared by a success. */
  readonly lastError: string | null;
  /** When the next run is due: after a failure, the retry. Null while stopped. */
  readonly nextRunAt: Date | null;
  readonly running: boolean;
}
