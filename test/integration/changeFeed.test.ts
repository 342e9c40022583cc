import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { PgChangeFeed } from '../../src/store/PgChangeFeed.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';

// The change feed every replica follows rules, tokens and load through: one LISTEN session that
// comes back when the server cuts it, and is gone once the feed stops.

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

/** Sessions of this database whose last statement is the feed's (LISTEN, or its ping). */
async function listeners(): Promise<number> {
  const r = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend'
        AND (query ILIKE 'LISTEN%' OR query = 'SELECT 1')`,
  );
  return Number(r.rows[0]!.n);
}

describe('PgChangeFeed', () => {
  it('delivers notifications, comes back after its session is cut, and leaves none after stop', async () => {
    const feed = new PgChangeFeed(db.url, ['feed_test'], silentLogger());
    const seen: string[] = [];
    let reconnects = 0;
    feed.onChange((payload) => seen.push(payload));
    feed.onReconnect(() => reconnects++);
    await feed.start();
    try {
      await db.query(`SELECT pg_notify('feed_test', 'one')`);
      await waitFor(() => seen.includes('one'));

      const cut = await db.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND (query ILIKE 'LISTEN%' OR query = 'SELECT 1')`,
      );
      expect(cut.rowCount).toBe(1);
      await waitFor(() => reconnects === 1, 5000);
      await db.query(`SELECT pg_notify('feed_test', 'two')`);
      await waitFor(() => seen.includes('two'));
    } finally {
      await feed.stop();
    }
    await waitFor(async () => (await listeners()) === 0, 3000);
    // Stopped: no retry brings a session back.
    await new Promise((r) => setTimeout(r, 800));
    expect(await listeners()).toBe(0);
  });
});
