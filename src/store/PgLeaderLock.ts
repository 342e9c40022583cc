import type pg from 'pg';
import { StoreUnavailableError } from '../errors.js';
import type { LeaderLock } from '../jobs/ports.js';
import type { Database, Queryable } from './Database.js';

/**
 * A session advisory lock on a connection of its own, held while `work` runs on others: work
 * that outlasts a statement timeout (cleanup in many batches) stays one replica's. A lost
 * connection releases the lock on the server; work is idempotent, so an overlap then costs
 * only time.
 *
 * The lock and unlock statements are raced against the database's admin bound: a frozen server
 * keeps the socket open and would never answer them. A lock statement given up on may still be
 * granted later, and an unlock that failed leaves the lock held, so in either case the
 * connection is destroyed rather than pooled: the server drops the session and its lock.
 */
export class PgLeaderLock implements LeaderLock {
  constructor(private readonly db: Database) {}

  withLeaderLock<T>(
    name: string,
    work: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }> {
    return this.db.withConnection(async (client, session) => {
      const key = `quota-authority:${name}`;
      const bounded = (text: string) =>
        boundedQuery<{ ok: boolean }>(client, text, [key], session.timeoutMs);
      let locked: boolean;
      try {
        locked =
          (await bounded('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok')).rows[0]
            ?.ok === true;
      } catch (err) {
        session.discard();
        throw err;
      }
      if (!locked) return { ran: false as const };
      try {
        return { ran: true as const, value: await work() };
      } finally {
        // The work's own outcome stands whatever the unlock does: ending the session unlocks.
        await bounded('SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS ok').then(
          (r) => {
            if (r.rows[0]?.ok !== true) session.discard();
          },
          () => session.discard(),
        );
      }
    });
  }
}

/** `text` on `client`, failing with StoreUnavailableError when it has not answered in `ms`. */
async function boundedQuery<R extends pg.QueryResultRow>(
  client: Queryable,
  text: string,
  values: unknown[],
  ms: number,
): Promise<pg.QueryResult<R>> {
  const pending = client.query<R>(text, values);
  // Given up on, it still settles (or fails when the connection is destroyed): not unhandled.
  pending.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      // One turn of the event loop first: an answer already read is not taken for silence.
      () =>
        setImmediate(() =>
          reject(new StoreUnavailableError(`advisory lock statement took over ${ms} ms`)),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
