import type { QuotaMaintenance } from '../quotas/ports.js';
import type { Database } from './Database.js';
import { deleteInBatches } from './deleteInBatches.js';

/**
 * Housekeeping of command quota state: reservations a day past their expiry (settled or not:
 * neither gives units back any more), and usage rows whose month ended over a month ago.
 * Executions are kept (their retention is the operators' side's).
 */
export class PgQuotaMaintenance implements QuotaMaintenance {
  constructor(private readonly db: Database) {}

  /**
   * In short batches; rows a decision or a record holds are skipped, never waited for. Days are
   * 24 hours, whatever the session's time zone.
   */
  deleteExpired(batch?: number, maxBatches?: number) {
    return deleteInBatches(
      this.db,
      {
        reservations: `DELETE FROM command_reservations WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM command_reservations
            WHERE expires_at < (SELECT clock_timestamp() - interval '24 hours')
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
        usage: `DELETE FROM command_usage WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM command_usage
            WHERE month_start < (SELECT clock_timestamp() - make_interval(hours => 24 * 62))
            LIMIT $1 FOR UPDATE SKIP LOCKED))`,
      },
      batch,
      maxBatches,
    );
  }
}
