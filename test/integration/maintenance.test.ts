import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgMaintenance } from '../../src/store/PgMaintenance.js';
import { PgQuotaMaintenance } from '../../src/store/PgQuotaMaintenance.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

/** The expiry jobs' deletes remove exactly the rows past expiry, over several small batches. */

let db: TestDatabase;
let database: Database;

beforeAll(async () => {
  db = await createTestDatabase();
  database = new Database({ url: db.url, timeoutMs: 10_000, poolSize: 2, logger: silentLogger() });
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

describe('expiry of stored state', () => {
  it('deletes expired counters and idempotency answers, and nothing else', async () => {
    await db.query(
      `INSERT INTO rate_limit_counters (rule, key, expires_ms)
       SELECT 'r', 'k' || i, extract(epoch FROM clock_timestamp()) * 1000
              + CASE WHEN i <= 5 THEN -60000 ELSE 60000 END
         FROM generate_series(1, 8) i`,
    );
    await db.query(
      `INSERT INTO idempotency_keys (key, response, expires_at)
       SELECT 'i' || i, '{}', clock_timestamp() + CASE WHEN i <= 3 THEN -interval '1 h' ELSE interval '1 h' END
         FROM generate_series(1, 4) i`,
    );
    // Batches of 2: three rounds for the five expired counters.
    expect(await new PgMaintenance(database).deleteExpired(2)).toEqual({
      counters: 5,
      idempotencyKeys: 3,
    });
    const left = await db.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM rate_limit_counters) + (SELECT count(*) FROM idempotency_keys) AS n`,
    );
    expect(Number(left.rows[0]!.n)).toBe(3 + 1);
  });

  it('deletes reservations a day past expiry and usage of long-gone months, and nothing else', async () => {
    await db.query(
      `INSERT INTO command_reservations (id, user_id, command_type, cost, day_start, week_start,
         month_start, created_at, expires_at)
       SELECT gen_random_uuid(), 'u', 'shell', 1, now(), now(), now(), now(),
              now() - CASE WHEN i <= 3 THEN interval '25 hours' ELSE interval '23 hours' END
         FROM generate_series(1, 5) i`,
    );
    await db.query(
      `INSERT INTO command_usage (user_id, command_type, month_start)
       SELECT 'u' || i, 'shell', now() - CASE WHEN i <= 2 THEN interval '70 days' ELSE interval '20 days' END
         FROM generate_series(1, 4) i`,
    );
    expect(await new PgQuotaMaintenance(database).deleteExpired(1)).toEqual({
      reservations: 3,
      usage: 2,
    });
    const left = await db.query<{ r: string; u: string }>(
      `SELECT (SELECT count(*) FROM command_reservations) AS r, (SELECT count(*) FROM command_usage) AS u`,
    );
    expect(left.rows[0]).toEqual({ r: '2', u: '2' });
  });
});
