import type { Database } from './Database.js';

/** Housekeeping queries: expiry of counters and idempotency answers. */
export class PgMaintenance {
  constructor(private readonly db: Database) {}

  /**
   * Deletes state that can no longer affect a decision. Runs under a transaction-scoped advisory
   * lock so that one replica does it at a time; returns null when another replica holds it.
   */
  async deleteExpired(
    batch = 10_000,
    maxBatches = 20,
  ): Promise<{ counters: number; idempotencyKeys: number } | null> {
    let total = null as { counters: number; idempotencyKeys: number } | null;
    // Batches, each its own short transaction, until a batch finds less than a full one.
    for (let i = 0; i < maxBatches; i++) {
      const done = await this.deleteBatch(batch);
      if (!done) return total;
      total = {
        counters: (total?.counters ?? 0) + done.counters,
        idempotencyKeys: (total?.idempotencyKeys ?? 0) + done.idempotencyKeys,
      };
      if (done.counters < batch && done.idempotencyKeys < batch) break;
    }
    return total;
  }

  private async deleteBatch(
    batch: number,
  ): Promise<{ counters: number; idempotencyKeys: number } | null> {
    return this.db.transaction(async (client) => {
      const lock = await client.query<{ ok: boolean }>(
        `SELECT pg_try_advisory_xact_lock(hashtextextended('quota-authority:cleanup', 0)) AS ok`,
      );
      if (!lock.rows[0]?.ok) return null;
      // Rows a decision holds are skipped, never waited for: no lock cycle with decisions.
      const counters = await client.query(
        `DELETE FROM rate_limit_counters WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM rate_limit_counters
            WHERE expires_ms < extract(epoch FROM clock_timestamp()) * 1000
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        [batch],
      );
      const keys = await client.query(
        `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM idempotency_keys WHERE expires_at < clock_timestamp()
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        [batch],
      );
      return { counters: counters.rowCount ?? 0, idempotencyKeys: keys.rowCount ?? 0 };
    });
  }
}
