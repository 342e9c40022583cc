import type { QuotaMaintenance } from '../quotas/ports.js';
import type { Database } from './Database.js';

/**
 * Housekeeping of command quota state: reservations a day past their expiry (settled or not:
 * neither gives units back any more), and usage rows whose month ended over a month ago.
 * Executions are kept (their retention is the operators' side's).
 */
export class PgQuotaMaintenance implements QuotaMaintenance {
  constructor(private readonly db: Database) {}

  async deleteExpired(
    batch = 10_000,
    maxBatches = 20,
  ): Promise<{ reservations: number; usage: number }> {
    const total = { reservations: 0, usage: 0 };
    for (let i = 0; i < maxBatches; i++) {
      // Rows a decision or a record holds are skipped, never waited for.
      const reservations = await this.db.query(
        `DELETE FROM command_reservations WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM command_reservations
            WHERE expires_at < clock_timestamp() - interval '1 day'
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        [batch],
      );
      const usage = await this.db.query(
        `DELETE FROM command_usage WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM command_usage
            WHERE month_start < clock_timestamp() - interval '62 days'
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        [batch],
      );
      total.reservations += reservations.rowCount ?? 0;
      total.usage += usage.rowCount ?? 0;
      if ((reservations.rowCount ?? 0) < batch && (usage.rowCount ?? 0) < batch) break;
    }
    return total;
  }
}
