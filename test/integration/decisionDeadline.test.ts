import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LimitService } from '../../src/limits/LimitService.js';
import type { RuleStore } from '../../src/limits/ports.js';
import { RuleCache } from '../../src/limits/RuleCache.js';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgLimitStore } from '../../src/store/PgLimitStore.js';
import { callerKeys, domainRule, limitInput } from '../support/domain.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { sqlSession } from '../support/sqlSession.js';

// A caller answered with the failure mode must not be counted, however late the database gets
// to the decision. A small timeout: answers within 450 ms, the database's budget 400 ms.
const TIMEOUT_MS = 500;

let db: TestDatabase;
let database: Database;
let service: LimitService;
const logger = silentLogger();

const rule = domainRule({ name: 'deadline', scope: 'user', limit: 5, algorithm: 'fixed_window' });
const rules: RuleStore = {
  list: async () => [rule],
  upsert: async (r) => r,
  setEnabled: async () => rule,
  delete: async () => undefined,
  replaceMatch: async () => false,
};

const check = (userId: string, requestId = '') =>
  service.check(limitInput({ userId, requestId, hits: 1 }));

async function counted(key: string): Promise<number | undefined> {
  const r = await db.query<{ curr: string }>(
    `SELECT curr FROM rate_limit_counters WHERE rule = 'deadline' AND key = $1`,
    [key],
  );
  return r.rows[0] ? Number(r.rows[0].curr) : undefined;
}

async function storedAnswers(): Promise<number> {
  return (await db.query('SELECT 1 FROM idempotency_keys')).rowCount ?? 0;
}

/** Until no quota_decide runs on this database: whatever it was going to write is written. */
async function decisionsEnded(): Promise<void> {
  const name = new URL(db.url).pathname.slice(1);
  await waitFor(async () => {
    const r = await db.query(
      `SELECT 1 FROM pg_stat_activity
        WHERE datname = $1 AND state <> 'idle' AND query LIKE '%quota_decide(%'
          AND pid <> pg_backend_pid()`,
      [name],
    );
    return r.rowCount === 0;
  }, 10_000);
}

beforeAll(async () => {
  db = await createTestDatabase();
  database = new Database({
    url: db.url,
    timeoutMs: TIMEOUT_MS,
    poolSize: 4,
    logger: silentLogger(),
    probeIntervalMs: 50,
  });
  const cache = new RuleCache(rules, logger);
  await cache.reload();
  service = new LimitService(
    cache,
    new PgLimitStore(database, { timeoutMs: TIMEOUT_MS }),
    { factorFor: () => 1 },
    { failureMode: 'open', timezone: 'UTC', keys: callerKeys() },
  );
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

describe('a decision past its deadline', () => {
  it('counts nothing for a caller answered with the failure mode while a lock was held', async () => {
    const errors = vi.spyOn(logger, 'error');
    await db.query(`INSERT INTO rate_limit_counters (rule, key) VALUES ('deadline', 'held')`);
    const holder = await sqlSession(db.url);
    try {
      await holder.query('BEGIN');
      await holder.query(
        `SELECT 1 FROM rate_limit_counters WHERE rule = 'deadline' AND key = 'held' FOR UPDATE`,
      );
      const answer = await check('held', 'r-held');
      expect(answer).toMatchObject({ allowed: true, degraded: true, limits: [] });
    } finally {
      // Released only once the caller has its answer: a decision still waiting would get the
      // lock now, with its caller gone.
      await holder.query('ROLLBACK');
      await holder.end();
    }
    await decisionsEnded();
    expect(await counted('held')).toBe(0);
    expect(await storedAnswers()).toBe(0);
    // A database too slow is the failure mode's case, not an unexpected error.
    expect(errors).not.toHaveBeenCalled();

    await waitFor(() => database.available);
    // The same request again is a new decision: the first one left no answer to replay.
    const later = await check('held', 'r-held');
    expect(later).toMatchObject({
      allowed: true,
      degraded: false,
      limits: [{ rule: 'deadline', key: 'held', remaining: 4 }],
    });
    expect(await counted('held')).toBe(1);
    expect(await storedAnswers()).toBe(1);
  });

  it('counts nothing when the database gets its locks in time but is late to write', async () => {
    const errors = vi.spyOn(logger, 'error');
    // Creating the counter row takes longer than the caller waits; no lock wait is involved,
    // so only the function's check of its deadline before writing stops the count.
    await db.query(`CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(${(TIMEOUT_MS * 1.4) / 1000}); RETURN NEW; END $$`);
    await db.query(`CREATE TRIGGER test_slow_insert BEFORE INSERT ON rate_limit_counters
      FOR EACH ROW EXECUTE FUNCTION test_slow_insert()`);
    try {
      const answer = await check('slow', 'r-slow');
      expect(answer).toMatchObject({ allowed: true, degraded: true, limits: [] });
      await decisionsEnded();
    } finally {
      await db.query('DROP TRIGGER test_slow_insert ON rate_limit_counters');
      await db.query('DROP FUNCTION test_slow_insert()');
    }
    expect(await counted('slow')).toBeUndefined();
    expect(
      await db.query(`SELECT 1 FROM idempotency_keys WHERE key LIKE '%r-slow%'`),
    ).toMatchObject({ rowCount: 0 });
    expect(errors).not.toHaveBeenCalled();

    await waitFor(() => database.available);
    const later = await check('slow', 'r-slow');
    expect(later).toMatchObject({ degraded: false, limits: [{ key: 'slow', remaining: 4 }] });
    expect(await counted('slow')).toBe(1);
  });
});
