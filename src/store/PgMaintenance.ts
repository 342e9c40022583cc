import type { LimitMaintenance } from '../limits/ports.js';
import type { Database } from './Database.js';

/** Housekeeping of rate-limit state: expiry of counters and idempotency answers. */
export class PgMaintenance implements LimitMaintenance {
  constructor(private readonly db: Database) {}

  /**
   * Deletes state that can no longer affect a decision, in batches of `batch` rows, each its own
   * short statement, until a batch finds less than a full one (at most `maxBatches`). The job
   * registry runs it on one replica at a time.
   */
  async deleteExpired(
    batch = 10_000,
    maxBatches = 20,
  ): Promise<{ counters: number; idempotencyKeys: number }> {
    const total = { counters: 0, idempotencyKeys: 0 };
    for (let i = 0; i < maxBatches; i++) {
      // Rows a decision holds are skipped, never waited for: no lock cycle with decisions.
      const counters = await this.db.query(
        `DELETE FROM rate_limit_counters WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM rate_limit_counters
            WHERE expires_ms < extract(epoch FROM clock_timestamp()) * 1000
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        [batch],
      );
      const keys = await this.db.query(
        `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM idempotency_keys WHERE expires_at < clock_timestamp()
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        [batch],
      );
      total.counters += counters.rowCount ?? 0;
      total.idempotencyKeys += keys.rowCount ?? 0;
      if ((counters.rowCount ?? 0) < batch && (keys.rowCount ?? 0) < batch) break;
    }
    return total;
  }
}
