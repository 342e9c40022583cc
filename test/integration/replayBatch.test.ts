import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgLimitStore } from '../../src/store/PgLimitStore.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

// A blocked caller's request_id is looked up before the block answers (a retry gets its first
// answer). A flood of blocked calls with fresh ids must stay a few reads, not one per call.

/** The real pool, counting the statements sent through it. */
class CountingDatabase extends Database {
  statements = 0;
  override query: Database['query'] = (text, values, opts) => {
    this.statements++;
    return super.query(text, values, opts);
  };
}

let db: TestDatabase;
let database: CountingDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  database = new CountingDatabase({
    url: db.url,
    timeoutMs: 1000,
    poolSize: 4,
    logger: silentLogger(),
  });
  await db.query(
    `INSERT INTO idempotency_keys (key, response, expires_at)
     VALUES ('check_limit:kept', '{"allowed": true, "retry_after_ms": 0, "limits": []}',
             clock_timestamp() + interval '1 hour'),
            ('check_limit:expired', '{"allowed": true, "retry_after_ms": 0, "limits": []}',
             clock_timestamp() - interval '1 second')`,
  );
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

describe('PgLimitStore.replay', () => {
  it('answers the stored first answer, marked replayed, and null for an unknown or expired key', async () => {
    const store = new PgLimitStore(database, { timeoutMs: 1000 });
    expect(await store.replay('check_limit:kept')).toEqual({
      allowed: true,
      replayed: true,
      retryAfterMs: 0,
      limits: [],
    });
    expect(await store.replay('check_limit:expired')).toBeNull();
    expect(await store.replay('check_limit:never')).toBeNull();
  });

  it('looks up 500 concurrent keys in a few statements, each with its own answer', async () => {
    const store = new PgLimitStore(database, { timeoutMs: 1000 });
    const before = database.statements;
    const keys = Array.from({ length: 500 }, (_, i) =>
      i % 100 === 0 ? 'check_limit:kept' : `check_limit:fresh-${i}`,
    );
    const answers = await Promise.all(keys.map((k) => store.replay(k)));
    expect(answers.filter((a) => a !== null)).toHaveLength(5);
    expect(answers.every((a, i) => (a !== null) === (keys[i] === 'check_limit:kept'))).toBe(true);
    expect(database.statements - before).toBeLessThanOrEqual(5);
  });
});
