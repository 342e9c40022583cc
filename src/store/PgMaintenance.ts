import type { LimitMaintenance } from '../limits/ports.js';
import type { Database } from './Database.js';
import { deleteInBatches } from './deleteInBatches.js';

/** Housekeeping of rate-limit state: expiry of counters and idempotency answers. */
export class PgMaintenance implements LimitMaintenance {
  constructor(private readonly db: Database) {}

  /**
   * Deletes state that can no longer affect a decision, in short batches (see deleteInBatches).
   * The job registry runs it on one replica at a time; rows a decision holds are skipped, never
   * waited for, so there is no lock cycle with decisions.
   */
  deleteExpired(batch?: number, maxBatches?: number) {
    return deleteInBatches(
      this.db,
      {
        counters: `DELETE FROM rate_limit_counters WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM rate_limit_counters
            WHERE expires_ms < (SELECT extract(epoch FROM clock_timestamp()) * 1000)
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        idempotencyKeys: `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM idempotency_keys WHERE expires_at < (SELECT clock_timestamp())
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
      },
      batch,
      maxBatches,
    );
  }
}
