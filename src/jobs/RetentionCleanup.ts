import { PreconditionError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';
import type { DeletedRows, LeaderLock, RetentionDays, RetentionStore } from './ports.js';

/** The retention task's name: RunTask takes it, and it names the lock every cleanup takes. */
export const RETENTION_TASK = 'retention-cleanup';

/** Bounds of any retention, in days. */
export const MIN_RETENTION_DAYS = 1;
export const MAX_RETENTION_DAYS = 3650;

/** The request field of each kind of retention, for the error that names it. */
const FIELDS: Readonly<Record<keyof RetentionDays, string>> = {
  executions: 'executions_days',
  violations: 'violations_days',
  loadHistory: 'load_history_days',
  rollups: 'rollups_days',
};

/**
 * Deletion of what is past retention: hourly as a cluster-wide task, and at once on an
 * operator's call (CleanupOldData). Both take one lock, so one replica cleans at a time
 * whichever way it was started; an operator's call that finds it taken is refused rather than
 * queued, since the cleanup in progress is doing the same work.
 */
export class RetentionCleanup {
  constructor(
    private readonly store: RetentionStore,
    private readonly lock: LeaderLock,
    /** The configured retention. */
    readonly configured: RetentionDays,
    private readonly logger: Logger,
  ) {}

  /** The hourly task. The registry holds the task's lock (its name) while it runs. */
  job(): Job {
    return {
      name: RETENTION_TASK,
      intervalMs: 3_600_000,
      clusterWide: true,
      run: async () => {
        await this.delete(this.configured);
      },
    };
  }

  /**
   * Deletes now what is older than `overrides` (each unset kind: the configured retention).
   * Throws ValidationError naming the field of a day count out of 1-3650, and PreconditionError
   * while another cleanup (this replica's task, another replica's, another call) runs.
   */
  async runNow(overrides: Partial<RetentionDays>): Promise<DeletedRows> {
    const days = { ...this.configured };
    for (const kind of Object.keys(FIELDS) as (keyof RetentionDays)[]) {
      const value = overrides[kind];
      if (value === undefined) continue;
      if (!Number.isInteger(value) || value < MIN_RETENTION_DAYS || value > MAX_RETENTION_DAYS)
        throw new ValidationError(
          FIELDS[kind],
          `must be ${MIN_RETENTION_DAYS} to ${MAX_RETENTION_DAYS} days (0: the configured ${this.configured[kind]})`,
        );
      days[kind] = value;
    }
    const result = await this.lock.withLeaderLock(RETENTION_TASK, () => this.delete(days));
    if (!result.ran)
      throw new PreconditionError('old data is being cleaned up now by another call or replica');
    return result.value;
  }

  private async delete(days: RetentionDays): Promise<DeletedRows> {
    const deleted = await this.store.deleteOld(days);
    if (Object.values(deleted).some((n) => n > 0))
      this.logger.info({ task: RETENTION_TASK, days, deleted }, 'data past retention deleted');
    return deleted;
  }
}
