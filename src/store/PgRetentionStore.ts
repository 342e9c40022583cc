import type { DeletedRows, RetentionDays, RetentionStore } from '../jobs/ports.js';
import type { Database } from './Database.js';
import { deleteInBatches, type BatchDelete } from './deleteInBatches.js';

/**
 * A DELETE of at most $1 rows of `table` whose `column` is older than $2 days by the database
 * clock, skipping rows a writer holds (they are taken next time, never waited for). `also` is
 * a further condition on the rows. A day is 24 hours: an interval of days would be counted in
 * the session's time zone, an hour more or less across a daylight-saving change. The cutoff is
 * a subquery, computed once: compared with clock_timestamp() itself (volatile), the rows would
 * be found by scanning the whole table instead of by the column's index.
 */
function olderThan(table: string, column: string, days: number, also = 'true'): BatchDelete {
  return {
    text: `DELETE FROM ${table} WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM ${table}
              WHERE ${column} < (SELECT clock_timestamp() - make_interval(hours => 24 * $2::int))
                AND ${also}
              LIMIT $1 FOR UPDATE SKIP LOCKED))`,
    values: [days],
  };
}

/** Ids of audit batches already written are kept a day: a batch is resent within seconds. */
const AUDIT_BATCH_DAYS = 1;

/** Hosts silent this many days are forgotten. */
const SILENT_HOST_DAYS = 1;

/**
 * Retention of everything the service keeps over time. Each table is cleaned by its time
 * column's index, in batches (see deleteInBatches): a backlog of millions of rows is deleted
 * as many short statements, none holding locks for long or outlasting the statement bound.
 */
export class PgRetentionStore implements RetentionStore {
  constructor(
    private readonly db: Database,
    /** Rows per DELETE. */
    private readonly batch = 5_000,
    /** DELETEs per table per run at most: what remains goes at the next run. */
    private readonly maxBatches = 200,
  ) {}

  async deleteOld(days: RetentionDays): Promise<DeletedRows> {
    const deleted = await deleteInBatches(
      this.db,
      {
        command_executions: olderThan('command_executions', 'recorded_at', days.executions),
        violations: olderThan('violations', 'last_at', days.violations),
        // A block still in force is kept whatever the flag's age: deleting it would lift it.
        attack_flags: olderThan(
          'attack_flags',
          'last_seen',
          days.violations,
          '(blocked_until IS NULL OR blocked_until <= clock_timestamp())',
        ),
        load_history: olderThan('load_history', 'at', days.loadHistory),
        throttle_events: olderThan('throttle_events', 'at', days.loadHistory),
        // Hosts silent for a day: every replica forgot them long ago (they are not history).
        host_load: olderThan('host_load', 'updated_at', SILENT_HOST_DAYS),
        // An hour goes when it began more than the retention ago.
        decision_stats: olderThan('decision_stats', 'hour', days.rollups),
        load_hourly: olderThan('load_hourly', 'hour', days.rollups),
        audit_batches: olderThan('audit_batches', 'written_at', AUDIT_BATCH_DAYS),
      },
      this.batch,
      this.maxBatches,
    );
    return deleted;
  }
}
