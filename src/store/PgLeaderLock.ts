import type { LeaderLock } from '../jobs/ports.js';
import type { Database } from './Database.js';

/**
 * A session advisory lock on a connection of its own, held while `work` runs on others: work
 * that outlasts a statement timeout (cleanup in many batches) stays one replica's. A lost
 * connection releases the lock on the server; work is idempotent, so an overlap then costs
 * only time.
 */
export class PgLeaderLock implements LeaderLock {
  constructor(private readonly db: Database) {}

  withLeaderLock<T>(
    name: string,
    work: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    return this.db.withConnection(async (client) => {
      const key = `quota-authority:${name}`;
      const lock = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
        [key],
      );
      if (!lock.rows[0]?.ok) return { ran: false as const };
      try {
        return { ran: true as const, value: await work() };
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      }
    });
  }
}
