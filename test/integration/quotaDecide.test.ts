import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import {
  quotaDecide,
  type DecideAnswer,
  type DecideCall,
  type DecideLimit,
  type DecideOptions,
} from '../support/quotaDecide.js';
import { sqlSession } from '../support/sqlSession.js';

// The stored function on its own, at times the test sets: every figure below is worked out by
// hand from the algorithm, in ms.
let db: TestDatabase;

/** 2024-01-01T00:00:00Z: a multiple of every window used here, so windows start at T0. */
const T0 = Date.UTC(2024, 0, 1);
const at = (ms: number) => new Date(T0 + ms);
const utc = (iso: string) => new Date(iso);
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function batch(calls: DecideCall[], now: Date | null, options?: DecideOptions) {
  return quotaDecide(db, calls, now, options);
}

async function one(
  limits: DecideLimit[],
  now: Date | null,
  hits = 1,
  options?: DecideOptions & { idem?: string },
): Promise<DecideAnswer> {
  const [answer] = await batch([{ limits, hits, idem: options?.idem ?? null }], now, options);
  return answer!;
}

/** A decision's one limit, or its limits by rule name. */
const only = (a: DecideAnswer) => {
  expect(a.limits).toHaveLength(1);
  return a.limits[0]!;
};
const byRule = (a: DecideAnswer, rule: string) => a.limits.find((l) => l.rule === rule)!;

async function counter(rule: string, key: string) {
  const r = await db.query<{ win_start: string; curr: string; prev: string; tat_ms: number }>(
    'SELECT win_start, curr, prev, tat_ms FROM rate_limit_counters WHERE rule = $1 AND key = $2',
    [rule, key],
  );
  const row = r.rows[0];
  return row
    ? {
        winStart: Number(row.win_start),
        curr: Number(row.curr),
        prev: Number(row.prev),
        tat: row.tat_ms,
      }
    : undefined;
}

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.query('DELETE FROM rate_limit_counters');
  await db.query('DELETE FROM idempotency_keys');
});

describe('quota_decide: fixed window', () => {
  const fw: DecideLimit = { rule: 'fw', key: 'k', limit: 3, algorithm: 'fixed_window' };

  it('counts to the limit, denies until the window ends, and starts afresh at the boundary', async () => {
    const a1 = await one([fw], at(10_000));
    expect(a1).toEqual({
      allowed: true,
      retry_after_ms: 0,
      limits: [
        {
          rule: 'fw',
          key: 'k',
          shadow: false,
          limit: 3,
          remaining: 2,
          window_ms: MIN,
          reset_after_ms: 50_000,
          exceeded: false,
        },
      ],
    });
    expect(only(await one([fw], at(20_000)))).toMatchObject({
      remaining: 1,
      reset_after_ms: 40_000,
    });
    expect(only(await one([fw], at(30_000)))).toMatchObject({
      remaining: 0,
      reset_after_ms: 30_000,
    });
    // One ms before the boundary: denied, and may try again in 1 ms.
    const late = await one([fw], at(59_999));
    expect(late.allowed).toBe(false);
    expect(late.retry_after_ms).toBe(1);
    expect(only(late)).toMatchObject({ remaining: 0, reset_after_ms: 1, exceeded: true });
    // At the boundary: a new window.
    const next = await one([fw], at(60_000));
    expect(next.allowed).toBe(true);
    expect(only(next)).toMatchObject({ remaining: 2, reset_after_ms: MIN, exceeded: false });
    expect(await counter('fw', 'k')).toMatchObject({ winStart: T0 + MIN, curr: 1, prev: 3 });
  });

  it('admits hits that fill the limit exactly and denies one more, counting nothing', async () => {
    const f5 = { ...fw, limit: 5 };
    expect(only(await one([f5], at(0), 2)).remaining).toBe(3);
    const past = await one([f5], at(0), 4);
    expect(past.allowed).toBe(false);
    expect(past.retry_after_ms).toBe(MIN);
    expect(only(past)).toMatchObject({ remaining: 3, exceeded: true });
    const exact = await one([f5], at(0), 3);
    expect(exact.allowed).toBe(true);
    expect(only(exact)).toMatchObject({ remaining: 0, exceeded: false });
    expect((await counter('fw', 'k'))!.curr).toBe(5);
  });

  it('asks hits above the limit to wait for the end of the next window', async () => {
    const a = await one([fw], at(10_000), 4);
    expect(a.allowed).toBe(false);
    // Never admitted in this window, nor with anything counted in the next: 50 s + 60 s.
    expect(a.retry_after_ms).toBe(110_000);
    expect(only(a)).toMatchObject({ remaining: 3, exceeded: true });
  });
});

describe('quota_decide: sliding window', () => {
  const sw: DecideLimit = { rule: 'sw', key: 'k', limit: 10, algorithm: 'sliding_window' };

  it("weighs the previous window's count by the part of it still inside the window", async () => {
    const a = await one([sw], at(30_000), 6);
    expect(a.allowed).toBe(true);
    // This window's count drains at the end of the next window: 60 + 60 - 30 s.
    expect(only(a)).toMatchObject({ remaining: 4, window_ms: MIN, reset_after_ms: 90_000 });
    // 15 s into the next window: 6 x 45/60 = 4.5 carried over; 4.5 + 5 = 9.5 fits.
    const b = await one([sw], at(75_000), 5);
    expect(b.allowed).toBe(true);
    expect(only(b)).toMatchObject({ remaining: 0, reset_after_ms: 105_000 });
    // 9.5 + 1 does not fit. It will when 6 x (45 - t)/60 + 5 + 1 <= 10, i.e. t = 5 s later.
    const c = await one([sw], at(75_000));
    expect(c.allowed).toBe(false);
    expect(c.retry_after_ms).toBe(5_000);
    expect(only(c)).toMatchObject({ remaining: 0, exceeded: true, reset_after_ms: 105_000 });
    // 1 ms before that: 6 x 40.001/60 + 5 = 9.0001, one more does not fit.
    const d = await one([sw], at(79_999));
    expect(d.allowed).toBe(false);
    expect(d.retry_after_ms).toBe(1);
    const e = await one([sw], at(80_000));
    expect(e.allowed).toBe(true);
    expect(only(e)).toMatchObject({ remaining: 0, reset_after_ms: 100_000 });
    expect(await counter('sw', 'k')).toMatchObject({ winStart: T0 + MIN, curr: 6, prev: 6 });
  });

  it('waits for the next window and the slide when the hits do not fit in this one', async () => {
    expect(only(await one([sw], at(30_000), 8)).remaining).toBe(2);
    // 8 + 3 > 10 in this window. Next window: 8 x (60 - s)/60 + 3 <= 10 at s = 7.5 s, so
    // 30 s to the boundary + 7.5 s.
    const denied = await one([sw], at(30_000), 3);
    expect(denied.allowed).toBe(false);
    expect(denied.retry_after_ms).toBe(37_500);
    expect(only(denied)).toMatchObject({ remaining: 2, exceeded: true, reset_after_ms: 90_000 });
    expect((await one([sw], at(67_499), 3)).allowed).toBe(false);
    const then = await one([sw], at(67_500), 3);
    expect(then.allowed).toBe(true);
    expect(only(then)).toMatchObject({ remaining: 0 });
  });

  it('admits hits that fill the limit exactly and denies one more', async () => {
    const s5 = { ...sw, limit: 5 };
    expect(only(await one([s5], at(30_000), 2)).remaining).toBe(3);
    // 2 + 4 > 5. Next window: 2 x (60 - s)/60 + 4 <= 5 at s = 30 s: 30 s + 30 s.
    const past = await one([s5], at(30_000), 4);
    expect(past.allowed).toBe(false);
    expect(past.retry_after_ms).toBe(MIN);
    expect(only(past)).toMatchObject({ remaining: 3, exceeded: true });
    const exact = await one([s5], at(30_000), 3);
    expect(exact.allowed).toBe(true);
    expect(only(exact)).toMatchObject({ remaining: 0, exceeded: false });
    expect(await counter('sw', 'k')).toMatchObject({ curr: 5, prev: 0 });
  });

  it('forgets a window that is two or more behind, and asks hits above the limit for two windows', async () => {
    await one([sw], at(30_000), 9);
    const fresh = await one([sw], at(180_001));
    expect(only(fresh)).toMatchObject({ remaining: 9, reset_after_ms: 119_999 });
    expect(await counter('sw', 'k')).toMatchObject({ winStart: T0 + 180_000, curr: 1, prev: 0 });
    const tooMany = await one([sw], at(180_001), 11);
    expect(tooMany.allowed).toBe(false);
    expect(tooMany.retry_after_ms).toBe(2 * MIN);
    expect(only(tooMany)).toMatchObject({ remaining: 9, exceeded: true });
  });
});

describe('quota_decide: token bucket', () => {
  // 4 per 60 s: one token every 15 s, a burst of 4.
  const tb: DecideLimit = { rule: 'tb', key: 'k', limit: 4, algorithm: 'token_bucket' };

  it('admits a burst of the limit, then one token per window / limit', async () => {
    expect(only(await one([tb], at(0)))).toMatchObject({
      remaining: 3,
      reset_after_ms: 15_000,
      window_ms: MIN,
    });
    // Exactly the rest of the burst.
    const burst = await one([tb], at(0), 3);
    expect(burst.allowed).toBe(true);
    expect(only(burst)).toMatchObject({ remaining: 0, reset_after_ms: MIN });
    const empty = await one([tb], at(0));
    expect(empty.allowed).toBe(false);
    expect(empty.retry_after_ms).toBe(15_000);
    expect(only(empty)).toMatchObject({ remaining: 0, reset_after_ms: MIN, exceeded: true });
    expect((await one([tb], at(14_999))).allowed).toBe(false);
    expect(only(await one([tb], at(15_000)))).toMatchObject({ remaining: 0, exceeded: false });
    expect((await counter('tb', 'k'))!.tat).toBe(T0 + 75_000);
  });

  it('admits hits that use the tokens exactly and denies one more', async () => {
    await one([tb], at(0), 4);
    await one([tb], at(15_000));
    // At 45 s the bucket is full again up to 75 s: (60 - 30) / 15 = 2 tokens.
    const past = await one([tb], at(45_000), 3);
    expect(past.allowed).toBe(false);
    // The third token comes at 60 s.
    expect(past.retry_after_ms).toBe(15_000);
    expect(only(past)).toMatchObject({ remaining: 2, reset_after_ms: 30_000, exceeded: true });
    const exact = await one([tb], at(45_000), 2);
    expect(exact.allowed).toBe(true);
    expect(only(exact)).toMatchObject({ remaining: 0, reset_after_ms: MIN });
    expect((await counter('tb', 'k'))!.tat).toBe(T0 + 105_000);
  });

  it('refills to a full burst after a window of rest, and asks hits above the limit for a window', async () => {
    await one([tb], at(0), 4);
    const rested = await one([tb], at(200_000));
    expect(only(rested)).toMatchObject({ remaining: 3, reset_after_ms: 15_000 });
    expect((await counter('tb', 'k'))!.tat).toBe(T0 + 215_000);
    const tooMany = await one([{ ...tb, key: 'other' }], at(0), 5);
    expect(tooMany.allowed).toBe(false);
    expect(tooMany.retry_after_ms).toBe(MIN);
    expect(only(tooMany)).toMatchObject({ remaining: 4, exceeded: true });
  });
});

describe('quota_decide: calendar periods in America/New_York', () => {
  const ny = { tz: 'America/New_York' };
  const daily: DecideLimit = { rule: 'daily', key: 'k', limit: 2, period: 'daily' };

  it('counts the 23-hour day of the spring change as one day, to local midnight', async () => {
    // 2024-03-10 starts at 05:00Z (EST) and ends at 2024-03-11T04:00Z (EDT).
    const a = await one([daily], utc('2024-03-10T12:00:00Z'), 1, ny);
    expect(only(a)).toMatchObject({
      remaining: 1,
      window_ms: 23 * HOUR,
      reset_after_ms: 16 * HOUR,
    });
    // 23:30 local on the same day is already 2024-03-11 in UTC.
    const b = await one([daily], utc('2024-03-11T03:30:00Z'), 1, ny);
    expect(only(b)).toMatchObject({ remaining: 0, reset_after_ms: 30 * MIN });
    const c = await one([daily], utc('2024-03-11T03:59:59.999Z'), 1, ny);
    expect(c.allowed).toBe(false);
    expect(c.retry_after_ms).toBe(1);
    const d = await one([daily], utc('2024-03-11T04:00:00Z'), 1, ny);
    expect(d.allowed).toBe(true);
    expect(only(d)).toMatchObject({ remaining: 1, window_ms: DAY, reset_after_ms: DAY });
  });

  it('asks hits above the limit to wait to the end of the next day', async () => {
    const a = await one([daily], utc('2024-03-10T12:00:00Z'), 3, ny);
    expect(a.allowed).toBe(false);
    expect(a.retry_after_ms).toBe(16 * HOUR + 23 * HOUR);
  });

  it('counts the 25-hour day of the autumn change as one day', async () => {
    // 2024-11-03 runs from 04:00Z (EDT) to 2024-11-04T05:00Z (EST).
    const a = await one([daily], utc('2024-11-03T12:00:00Z'), 1, ny);
    expect(only(a)).toMatchObject({ window_ms: 25 * HOUR, reset_after_ms: 17 * HOUR });
  });

  it('aligns days in the zone it is given: the same instants in UTC are two days', async () => {
    const u = { ...daily, key: 'utc', limit: 1 };
    expect((await one([u], utc('2024-03-10T12:00:00Z'))).allowed).toBe(true);
    const b = await one([u], utc('2024-03-11T03:30:00Z'));
    expect(b.allowed).toBe(true);
    expect(only(b)).toMatchObject({ window_ms: DAY, reset_after_ms: 20 * HOUR + 30 * MIN });
  });

  it('runs a week from Monday 00:00 local to the next, the spring change included', async () => {
    const weekly: DecideLimit = { rule: 'weekly', key: 'k', limit: 1, period: 'weekly' };
    // Sunday 2024-03-10 belongs to the week of Monday 03-04 (05:00Z), which ends Monday 03-11
    // 00:00 EDT (04:00Z): 7 x 24 - 1 hours.
    const sun = await one([weekly], utc('2024-03-10T12:00:00Z'), 1, ny);
    expect(only(sun)).toMatchObject({
      remaining: 0,
      window_ms: 167 * HOUR,
      reset_after_ms: 16 * HOUR,
    });
    const sunLate = await one([weekly], utc('2024-03-11T03:30:00Z'), 1, ny);
    expect(sunLate.allowed).toBe(false);
    expect(sunLate.retry_after_ms).toBe(30 * MIN);
    const mon = await one([weekly], utc('2024-03-11T04:00:00Z'), 1, ny);
    expect(mon.allowed).toBe(true);
    expect(only(mon)).toMatchObject({ window_ms: 168 * HOUR, reset_after_ms: 168 * HOUR });
  });

  it('runs a month from the 1st 00:00 local to the next, across each change', async () => {
    const monthly: DecideLimit = { rule: 'monthly', key: 'k', limit: 1, period: 'monthly' };
    // March 2024: 03-01 05:00Z (EST) to 04-01 04:00Z (EDT), 31 days less an hour.
    const mar = await one([monthly], utc('2024-03-31T12:00:00Z'), 1, ny);
    expect(only(mar)).toMatchObject({ window_ms: 31 * DAY - HOUR, reset_after_ms: 16 * HOUR });
    const marLate = await one([monthly], utc('2024-04-01T03:59:59.999Z'), 1, ny);
    expect(marLate.allowed).toBe(false);
    expect(marLate.retry_after_ms).toBe(1);
    const apr = await one([monthly], utc('2024-04-01T04:00:00Z'), 1, ny);
    expect(apr.allowed).toBe(true);
    expect(only(apr)).toMatchObject({ window_ms: 30 * DAY, reset_after_ms: 30 * DAY });
    // November 2024: 11-01 04:00Z (EDT) to 12-01 05:00Z (EST), 30 days and an hour.
    const nov = await one([{ ...monthly, key: 'nov' }], utc('2024-11-15T12:00:00Z'), 1, ny);
    expect(only(nov)).toMatchObject({
      window_ms: 30 * DAY + HOUR,
      reset_after_ms: 15 * DAY + 17 * HOUR,
    });
  });
});

describe('quota_decide: shadow rules', () => {
  it('counts a shadow limit and reports it exceeded, but never denies by it', async () => {
    const s: DecideLimit = { rule: 'shadow', key: 'k', limit: 1, shadow: true };
    const e: DecideLimit = { rule: 'enforced', key: 'k', limit: 10 };
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await one([s, e], at(0)));
    expect(answers.map((a) => [a.allowed, a.retry_after_ms])).toEqual([
      [true, 0],
      [true, 0],
      [true, 0],
    ]);
    expect(answers.map((a) => byRule(a, 'shadow'))).toEqual(
      [false, true, true].map((exceeded) =>
        expect.objectContaining({ shadow: true, remaining: 0, exceeded }),
      ),
    );
    expect(answers.map((a) => byRule(a, 'enforced').remaining)).toEqual([9, 8, 7]);
    expect((await counter('shadow', 'k'))!.curr).toBe(3);
    expect((await counter('enforced', 'k'))!.curr).toBe(3);
  });

  it('counts a shadow token bucket past its burst', async () => {
    const s: DecideLimit = {
      rule: 'shadow-tb',
      key: 'k',
      limit: 1,
      algorithm: 'token_bucket',
      shadow: true,
    };
    await one([s], at(0));
    const over = await one([s], at(0));
    expect(over.allowed).toBe(true);
    expect(only(over)).toMatchObject({ exceeded: true, remaining: 0, reset_after_ms: MIN });
    expect((await counter('shadow-tb', 'k'))!.tat).toBe(T0 + 2 * MIN);
  });

  it('counts nothing in a shadow limit when another limit denies', async () => {
    const s: DecideLimit = { rule: 'shadow', key: 'k', limit: 5, shadow: true };
    const e: DecideLimit = { rule: 'enforced', key: 'k', limit: 1 };
    await one([s, e], at(0));
    const denied = await one([s, e], at(0));
    expect(denied.allowed).toBe(false);
    expect(byRule(denied, 'shadow')).toMatchObject({ remaining: 4, exceeded: false });
    expect((await counter('shadow', 'k'))!.curr).toBe(1);
  });
});

describe('quota_decide: all or nothing', () => {
  it('consumes nothing from any limit when one denies', async () => {
    const a: DecideLimit = { rule: 'a', key: 'k', limit: 1 };
    const b: DecideLimit = { rule: 'b', key: 'k', limit: 5, algorithm: 'sliding_window' };
    // 5 per 60 s: a token every 12 s.
    const c: DecideLimit = { rule: 'c', key: 'k', limit: 5, algorithm: 'token_bucket' };
    const first = await one([a, b, c], at(0));
    expect(first.limits.map((l) => [l.rule, l.remaining])).toEqual([
      ['a', 0],
      ['b', 4],
      ['c', 4],
    ]);
    const denied = await one([a, b, c], at(0));
    expect(denied.allowed).toBe(false);
    expect(denied.retry_after_ms).toBe(MIN);
    expect(denied.limits.map((l) => [l.rule, l.remaining, l.exceeded])).toEqual([
      ['a', 0, true],
      ['b', 4, false],
      ['c', 4, false],
    ]);
    expect(await counter('a', 'k')).toMatchObject({ curr: 1 });
    expect(await counter('b', 'k')).toMatchObject({ curr: 1 });
    expect((await counter('c', 'k'))!.tat).toBe(T0 + 12_000);
    const without = await one([b, c], at(0));
    expect(without.limits.map((l) => [l.rule, l.remaining])).toEqual([
      ['b', 3],
      ['c', 3],
    ]);
  });
});

describe('quota_decide: several decisions in one batch', () => {
  it('decides them in order on shared counters, each seeing those before it', async () => {
    const x: DecideLimit = { rule: 'x', key: 'k', limit: 3 };
    const y: DecideLimit = { rule: 'y', key: 'k', limit: 10 };
    const answers = await batch(
      [{ limits: [x, y] }, { limits: [x], hits: 2 }, { limits: [x, y] }, { limits: [y] }],
      at(0),
    );
    expect(answers.map((a) => a.allowed)).toEqual([true, true, false, true]);
    expect(answers.map((a) => a.limits.map((l) => [l.rule, l.remaining]))).toEqual([
      [
        ['x', 2],
        ['y', 9],
      ],
      [['x', 0]],
      [
        ['x', 0],
        ['y', 9],
      ],
      [['y', 8]],
    ]);
    expect(answers[2]!.retry_after_ms).toBe(MIN);
    expect((await counter('x', 'k'))!.curr).toBe(3);
    expect((await counter('y', 'k'))!.curr).toBe(2);
  });

  it('admits exactly the limit of many decisions on one counter', async () => {
    const hot: DecideLimit = { rule: 'hot', key: 'k', limit: 5, algorithm: 'sliding_window' };
    const answers = await batch(
      Array.from({ length: 8 }, () => ({ limits: [hot] })),
      at(0),
    );
    expect(answers.map((a) => a.allowed)).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(answers.map((a) => only(a).remaining)).toEqual([4, 3, 2, 1, 0, 0, 0, 0]);
    expect((await counter('hot', 'k'))!.curr).toBe(5);
  });
});

describe('quota_decide: idempotent replay', () => {
  const r: DecideLimit = { rule: 'r', key: 'k', limit: 1 };

  it('returns the first answer to a repeated key, counting nothing, for 24 hours', async () => {
    const first = await one([r], at(0), 1, { idem: 'a' });
    expect(first).toMatchObject({ allowed: true, limits: [{ remaining: 0, reset_after_ms: MIN }] });
    const replay = await one([r], at(1_000), 1, { idem: 'a' });
    expect(replay).toEqual({ ...first, replayed: true });
    expect((await counter('r', 'k'))!.curr).toBe(1);
    // Stored at T0 for 24 h: still there 1 ms before, gone at 24 h (decided again, and counted).
    expect((await one([r], at(DAY - 1), 1, { idem: 'a' })).replayed).toBe(true);
    const after = await one([r], at(DAY), 1, { idem: 'a' });
    expect(after.replayed).toBeUndefined();
    expect(after.allowed).toBe(true);
    expect(await counter('r', 'k')).toMatchObject({ winStart: T0 + DAY, curr: 1 });
  });

  it('replays a denial even once the limit would admit', async () => {
    await one([r], at(0));
    const denied = await one([r], at(2_000), 1, { idem: 'b' });
    expect(denied).toMatchObject({ allowed: false, retry_after_ms: 58_000 });
    const replay = await one([r], at(61_000), 1, { idem: 'b' });
    expect(replay).toEqual({ ...denied, replayed: true });
    // The window had room: a new request is admitted.
    expect((await one([r], at(61_000))).allowed).toBe(true);
  });

  it('stores each decision of a batch under its own key', async () => {
    const wide = { ...r, limit: 5 };
    await batch(
      [
        { limits: [wide], idem: 'p' },
        { limits: [wide], idem: 'q', hits: 2 },
      ],
      at(0),
    );
    const replays = await batch(
      [
        { limits: [wide], idem: 'q', hits: 2 },
        { limits: [wide], idem: 'p' },
      ],
      at(1_000),
    );
    expect(replays.map((a) => [a.replayed, only(a).remaining])).toEqual([
      [true, 2],
      [true, 4],
    ]);
    expect((await counter('r', 'k'))!.curr).toBe(3);
  });
});

describe('quota_decide: time and deadline', () => {
  const d: DecideLimit = { rule: 'd', key: 'k', limit: 5, windowMs: HOUR };

  it('uses the database clock when no time is given', async () => {
    const clock = async () =>
      Number(
        (
          await db.query<{ ms: string }>(
            'SELECT extract(epoch FROM clock_timestamp()) * 1000 AS ms',
          )
        ).rows[0]!.ms,
      );
    const before = await clock();
    const a = await one([d], null);
    const after = await clock();
    const end = Math.floor(before / HOUR) * HOUR + HOUR;
    // The window the database chose ends at the next full hour after its clock reading.
    expect(Math.floor(after / HOUR) * HOUR + HOUR).toBe(end);
    expect(only(a).reset_after_ms).toBeGreaterThanOrEqual(Math.floor(end - after));
    expect(only(a).reset_after_ms).toBeLessThanOrEqual(Math.ceil(end - before));
  });

  async function failure(call: Promise<unknown>): Promise<{ code?: string; message: string }> {
    const err = await call.then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(err).toBeDefined();
    return err!;
  }

  it('refuses a budget with no time left, writing nothing', async () => {
    for (const budgetMs of [0, -5, null]) {
      const err = await failure(one([d], at(0), 1, { budgetMs, idem: 'x' }));
      expect(err.code).toBe('57014');
    }
    expect(await counter('d', 'k')).toBeUndefined();
    expect((await db.query('SELECT 1 FROM idempotency_keys')).rowCount).toBe(0);
  });

  it('gives up a lock held past the budget, counting nothing', async () => {
    await one([d], at(0));
    const holder = await sqlSession(db.url);
    try {
      await holder.query('BEGIN');
      await holder.query(
        `SELECT 1 FROM rate_limit_counters WHERE rule = 'd' AND key = 'k' FOR UPDATE`,
      );
      // The lock is held until the call has failed: its wait can only end by the budget.
      const err = await failure(one([d], at(0), 1, { budgetMs: 100, idem: 'y' }));
      expect(err.code).toBe('55P03');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await counter('d', 'k'))!.curr).toBe(1);
    expect((await db.query('SELECT 1 FROM idempotency_keys')).rowCount).toBe(0);
    expect(only(await one([d], at(0), 1, { idem: 'y' })).remaining).toBe(3);
  });

  it('writes nothing when the budget has run out by the time it would count', async () => {
    // Slows the creation of a counter row past the budget, without a lock wait: only the check
    // before the writes can stop this decision.
    await db.query(`CREATE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$`);
    await db.query(`CREATE TRIGGER test_slow_insert BEFORE INSERT ON rate_limit_counters
      FOR EACH ROW EXECUTE FUNCTION test_slow_insert()`);
    try {
      const err = await failure(one([d], at(0), 1, { budgetMs: 100, idem: 'z' }));
      expect(err.code).toBe('57014');
      expect(err.message).toContain('deadline of 100 ms passed before counting');
    } finally {
      await db.query('DROP TRIGGER test_slow_insert ON rate_limit_counters');
      await db.query('DROP FUNCTION test_slow_insert()');
    }
    expect(await counter('d', 'k')).toBeUndefined();
    expect((await db.query('SELECT 1 FROM idempotency_keys')).rowCount).toBe(0);
  });
});
