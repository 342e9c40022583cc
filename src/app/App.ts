import type { JobStatus } from '../jobs/Job.js';

/** A running service. */
export interface App {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound metrics port, or 0 when disabled. */
  readonly metricsPort: number;
  /** The database URL in use (the embedded server's when DATABASE_URL is unset). */
  readonly databaseUrl: string;
  /** Load samples taken by this process's one sampling loop since start. */
  loadSamples(): number;
  /** WatchLoad streams open on this replica. */
  loadWatchers(): number;
  /** Every background job with its last run, from the one registry. */
  jobs(): JobStatus[];
  /** Graceful stop: NOT_SERVING, drain, stop jobs and capabilities, close the database. */
  stop(graceMs?: number): Promise<void>;
}
