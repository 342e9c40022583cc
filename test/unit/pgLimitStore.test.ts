import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import type { CounterRequest } from '../../src/limits/types.js';
import type { Database } from '../../src/store/Database.js';
import { PgLimitStore } from '../../src/store/PgLimitStore.js';

const counter: CounterRequest = {
  rule: 'r',
  key: 'k',
  limit: 5,
  windowMs: 60_000,
  algorithm: 'fixed_window',
  period: null,
  shadow: false,
};

/** A Database whose query runs `answer` with the text and parameters it was given. */
function fakeDatabase(answer: (text: string, values: unknown[]) => Promise<unknown>): Database {
  return {
    query: (text: string, values: unknown[]) => answer(text, values),
  } as unknown as Database;
}

/** The budget parameter as pg would write it to the connection now. */
const budgetOf = (values: unknown[]) =>
  Number((values[13] as { toPostgres(): string }).toPostgres());

const decision = {
  allowed: true,
  retry_after_ms: 0,
  limits: [
    {
      rule: 'r',
      key: 'k',
      shadow: false,
      limit: '5',
      remaining: '4',
      window_ms: '60000',
      reset_after_ms: '60000',
      exceeded: false,
    },
  ],
};

afterEach(() => {
  vi.useRealTimers();
});

describe('PgLimitStore', () => {
  it('sends the time left to the caller less the margin, read when the query is written', async () => {
    vi.useFakeTimers();
    const budgets: number[] = [];
    const db = fakeDatabase(async (text, values) => {
      expect(text).toContain('p_now => NULL');
      budgets.push(budgetOf(values));
      // A wait for a pooled connection: the budget shrinks with it.
      await new Promise((r) => setTimeout(r, 100));
      budgets.push(budgetOf(values));
      return { rows: [{ result: [decision] }] };
    });
    // Answer within 450 ms, margin 50 ms: 400 ms for the database.
    const store = new PgLimitStore(db, { timeoutMs: 500 });
    const answer = store.check([counter], 1, null, 'UTC');
    await vi.advanceTimersByTimeAsync(100);
    expect(await answer).toEqual({
      allowed: true,
      replayed: false,
      retryAfterMs: 0,
      limits: [
        {
          rule: 'r',
          key: 'k',
          shadow: false,
          limit: 5,
          remaining: 4,
          windowMs: 60_000,
          resetAfterMs: 60_000,
          exceeded: false,
        },
      ],
    });
    expect(budgets).toEqual([400, 300]);
  });

  it('takes the margin it is given', async () => {
    vi.useFakeTimers();
    let budget = 0;
    const db = fakeDatabase(async (_text, values) => {
      budget = budgetOf(values);
      return { rows: [{ result: [decision] }] };
    });
    await new PgLimitStore(db, { timeoutMs: 500, deadlineMarginMs: 10 }).check(
      [counter],
      1,
      null,
      'UTC',
    );
    expect(budget).toBe(440);
  });

  it.each([
    ['57014', 'quota_decide: deadline of 400 ms passed before counting'],
    ['55P03', 'canceling statement due to lock timeout'],
  ])('answers StoreUnavailableError when the database was too late (%s)', async (code, message) => {
    const cause = Object.assign(new Error(message), { code });
    const store = new PgLimitStore(
      fakeDatabase(async () => Promise.reject(cause)),
      { timeoutMs: 500 },
    );
    const err = await store.check([counter], 1, null, 'UTC').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).cause).toBe(cause);
  });

  it('passes any other database error on as it is', async () => {
    const cause = Object.assign(new Error('invalid byte sequence'), { code: '22021' });
    const store = new PgLimitStore(
      fakeDatabase(async () => Promise.reject(cause)),
      { timeoutMs: 500 },
    );
    await expect(store.check([counter], 1, null, 'UTC')).rejects.toBe(cause);
  });
});
