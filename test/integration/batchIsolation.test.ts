import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RejectedInputError } from '../../src/errors.js';
import type { CounterDecision, CounterRequest } from '../../src/limits/types.js';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgLimitStore } from '../../src/store/PgLimitStore.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

// A value PostgreSQL refuses inside a batched statement (a NUL byte in a counter key: error
// 22021) fails the whole statement. The store decides the batch again without it: the other
// decisions of the batch are decided, and only the one at fault gets an error. Validation
// normally keeps such values out; this is what happens when one gets through.
const ORDINARY = 1500;
const WITH_NUL = 150;
const USERS = 40;

let db: TestDatabase;
let database: Database;
let store: PgLimitStore;

const counter = (key: string): CounterRequest => ({
  rule: 'isolated',
  key,
  limit: 1_000_000,
  windowMs: 3_600_000,
  algorithm: 'sliding_window',
  period: null,
  shadow: false,
});

beforeAll(async () => {
  db = await createTestDatabase();
  database = new Database({ url: db.url, timeoutMs: 10_000, poolSize: 8, logger: silentLogger() });
  // Isolation is the claim, not latency: a timeout no loaded box reaches.
  store = new PgLimitStore(database, { timeoutMs: 10_000 });
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

describe('a batch with a value PostgreSQL refuses', () => {
  it(`decides all ${ORDINARY} ordinary decisions among ${WITH_NUL} refused ones`, async () => {
    const statements = vi.spyOn(database, 'query');
    // Every 11th call has a NUL in its key; all are in flight at once, so batches mix them.
    const calls = Array.from({ length: ORDINARY + WITH_NUL }, (_, i) => {
      const bad = i % 11 === 5;
      const key = bad ? `user-${i}\u0000x` : `user-${i % USERS}`;
      const requestId = i % 3 === 0 ? `req-${i}` : null;
      return {
        bad,
        key,
        answer: store.check([counter(key)], 1, requestId, 'UTC').then(
          (d): CounterDecision | Error => d,
          (err: unknown) => err as Error,
        ),
      };
    });
    expect(calls.filter((c) => c.bad)).toHaveLength(WITH_NUL);
    const answers = await Promise.all(calls.map((c) => c.answer));

    const ordinary = answers.filter((_, i) => !calls[i]!.bad);
    const refused = answers.filter((_, i) => calls[i]!.bad);
    expect(ordinary.filter((a) => a instanceof Error)).toEqual([]);
    expect(ordinary.every((a) => (a as CounterDecision).allowed)).toBe(true);
    for (const err of refused) {
      expect(err).toBeInstanceOf(RejectedInputError);
      expect((err as Error).message).toContain('field not known here');
      expect(((err as Error).cause as { code?: string }).code).toBe('22021');
    }
    // Each ordinary decision counted once, the refused ones not at all.
    const rows = await db.query<{ n: string }>(
      `SELECT sum(curr) AS n FROM rate_limit_counters WHERE rule = 'isolated'`,
    );
    expect(Number(rows.rows[0]!.n)).toBe(ORDINARY);
    console.log(
      `batch isolation: ${statements.mock.calls.length} statements for ${calls.length} decisions`,
    );
  });

  it('decides a lone ordinary decision after a refused one in the same batch', async () => {
    // Two in flight at once: the second batch holds both, and is split.
    const busy = store.check([counter('pair-busy')], 1, null, 'UTC');
    const bad = store.check([counter('pair\u0000bad')], 1, null, 'UTC');
    const good = store.check([counter('pair-good')], 1, null, 'UTC');
    const third = store.check([counter('pair-third')], 1, null, 'UTC');
    await expect(bad).rejects.toBeInstanceOf(RejectedInputError);
    for (const d of await Promise.all([busy, good, third])) {
      expect(d).toMatchObject({ allowed: true, limits: [{ remaining: 999_999 }] });
    }
  });
});
