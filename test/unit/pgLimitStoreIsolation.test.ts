import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { RejectedInputError, StoreUnavailableError } from '../../src/errors.js';
import type { CounterRequest } from '../../src/limits/types.js';
import type { Database } from '../../src/store/Database.js';
import { PgLimitStore } from '../../src/store/PgLimitStore.js';

const counter = (key: string): CounterRequest => ({
  rule: 'r',
  key,
  limit: 5,
  windowMs: 60_000,
  algorithm: 'fixed_window',
  period: null,
  shadow: false,
});

const decision = (key: string) => ({
  allowed: true,
  retry_after_ms: 0,
  limits: [
    {
      rule: 'r',
      key,
      shadow: false,
      limit: '5',
      remaining: '4',
      window_ms: '60000',
      reset_after_ms: '60000',
      exceeded: false,
    },
  ],
});

function databaseError(code: string, message: string): pg.DatabaseError {
  const err = new pg.DatabaseError(message, message.length, 'error');
  err.code = code;
  return err;
}

/**
 * A Database that decides like quota_decide would, except that `refuse` (given the counter keys
 * of a statement's decisions) may reject the statement. Records the keys of every statement.
 */
function fakeDatabase(refuse: (keys: string[]) => Error | undefined) {
  const statements: string[][] = [];
  const db = {
    query: async (_text: string, values: unknown[]) => {
      // $2 holds the distinct counter keys; $3 points each decision's counter into them.
      const keys = values[1] as string[];
      const decisionKeys = (values[2] as number[]).map((i) => keys[i - 1]!);
      statements.push(decisionKeys);
      const err = refuse(decisionKeys);
      if (err) throw err;
      return { rows: [{ result: decisionKeys.map(decision) }] };
    },
  } as unknown as Database;
  return { db, statements };
}

describe('PgLimitStore, a statement PostgreSQL refuses', () => {
  it('answers the decision holding the bad value RejectedInputError, and decides the others', async () => {
    const nul = databaseError('22021', 'invalid byte sequence for encoding "UTF8": 0x00');
    const { db, statements } = fakeDatabase((keys) =>
      keys.some((k) => k.includes('\u0000')) ? nul : undefined,
    );
    const store = new PgLimitStore(db, { timeoutMs: 10_000, maxInFlight: 1 });
    const keys = ['busy', 'a', 'b\u0000', 'c', 'd', 'e'];
    const answers = await Promise.all(
      keys.map((k) => store.check([counter(k)], 1, null, 'UTC').catch((e: unknown) => e as Error)),
    );
    keys.forEach((k, i) => {
      if (k.includes('\u0000')) {
        expect(answers[i]).toBeInstanceOf(RejectedInputError);
        expect((answers[i] as Error).cause).toBe(nul);
      } else {
        expect(answers[i]).toMatchObject({ allowed: true, limits: [{ key: k, remaining: 4 }] });
      }
    });
    // The first statement held 'busy' alone; the second, all the rest, was split down.
    expect(statements[1]).toEqual(['a', 'b\u0000', 'c', 'd', 'e']);
    expect(statements.filter((s) => s.length === 1 && s[0] === 'b\u0000')).toHaveLength(1);
  });

  it('passes an error no value can cause to every decision of the statement, without splitting it', async () => {
    const readOnly = databaseError('25006', 'cannot execute INSERT in a read-only transaction');
    const { db, statements } = fakeDatabase((keys) =>
      keys.includes('busy') ? undefined : readOnly,
    );
    const store = new PgLimitStore(db, { timeoutMs: 10_000, maxInFlight: 1 });
    const busy = store.check([counter('busy')], 1, null, 'UTC');
    const rest = ['a', 'b', 'c'].map((k) =>
      store.check([counter(k)], 1, null, 'UTC').catch((e: unknown) => e),
    );
    await busy;
    // A read-only server can decide nothing for anyone: the failure mode's case.
    for (const answer of await Promise.all(rest)) {
      expect(answer).toBeInstanceOf(StoreUnavailableError);
      expect((answer as Error).cause).toBe(readOnly);
    }
    expect(statements).toEqual([['busy'], ['a', 'b', 'c']]);
  });

  it('passes an error of the statement itself to every decision, unsplit and not as the failure mode', async () => {
    const missing = databaseError('42883', 'function quota_decide(...) does not exist');
    const { db, statements } = fakeDatabase((keys) =>
      keys.includes('busy') ? undefined : missing,
    );
    const store = new PgLimitStore(db, { timeoutMs: 10_000, maxInFlight: 1 });
    const busy = store.check([counter('busy')], 1, null, 'UTC');
    const rest = ['a', 'b', 'c'].map((k) =>
      store.check([counter(k)], 1, null, 'UTC').catch((e: unknown) => e),
    );
    await busy;
    expect(await Promise.all(rest)).toEqual([missing, missing, missing]);
    expect(statements).toEqual([['busy'], ['a', 'b', 'c']]);
  });

  it('decides a batch that fills the lock table again in halves, none in the failure mode', async () => {
    const full = databaseError('53200', 'out of shared memory');
    const { db, statements } = fakeDatabase((keys) => (keys.length > 2 ? full : undefined));
    const store = new PgLimitStore(db, { timeoutMs: 10_000, maxInFlight: 1 });
    const busy = store.check([counter('busy')], 1, null, 'UTC');
    const rest = ['a', 'b', 'c', 'd', 'e'].map((k) => store.check([counter(k)], 1, null, 'UTC'));
    await busy;
    const answers = await Promise.all(rest);
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true, true, true]);
    expect(statements[1]).toEqual(['a', 'b', 'c', 'd', 'e']);
    // Split until the parts fit: a refused three, then halves of at most two that are decided.
    expect(statements.slice(2).map((s) => s.length)).toEqual([3, 2, 2, 1]);
  });

  it('puts a burst on one counter in a few statements', async () => {
    const { db, statements } = fakeDatabase(() => undefined);
    const store = new PgLimitStore(db, { timeoutMs: 10_000, maxInFlight: 1 });
    await Promise.all(
      Array.from({ length: 3001 }, () => store.check([counter('hot')], 1, null, 'UTC')),
    );
    // The first alone (the store was idle); then, with one in flight and a burst waiting (no
    // turn to gather), another as soon as a full batch of distinct counters (256) waits; then the
    // rest, up to 1,024 a statement.
    expect(statements.map((s) => s.length)).toEqual([1, 256, 1024, 1024, 696]);
  });
});
