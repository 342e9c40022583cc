import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandQuotaService } from '../../src/quotas/CommandQuotaService.js';
import type { QuotaAdmin } from '../../src/quotas/QuotaAdmin.js';
import type { CommandQuotaResult, PeriodLimits, PeriodUsage } from '../../src/quotas/types.js';
import { setTimeQuotas, type SetTimeQuotas } from '../support/setTimeQuotas.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

// Calendar periods of command quotas, proven at times the test sets (the store's `now`, passed
// to the SQL): never by waiting. Every instant below is worked out by hand from the calendar.
// The real stores, rule index and caches; only the host load is a stub (factor 1: no load).

const HOUR = 3_600_000;

let db: TestDatabase;
let quotas: SetTimeQuotas;
let admin: QuotaAdmin;
/** The time the store decides at; each test sets it before each call. */
let now = new Date('2024-01-01T00:00:00Z');

const at = (iso: string) => {
  now = new Date(iso);
};

function service(timezone: string): CommandQuotaService {
  return quotas.service(timezone);
}

async function rule(userId: string, commandType: string, limits: Partial<PeriodLimits>) {
  await admin.upsertRule({
    userId,
    commandType,
    limits: { daily: null, weekly: null, monthly: null, ...limits },
    cpuEstimatePercent: 0,
    memoryEstimateBytes: 0,
  });
}

const period = (r: { periods: readonly PeriodUsage[] }, p: PeriodUsage['period']) =>
  r.periods.find((x) => x.period === p)!;
const used = (r: CommandQuotaResult) => r.periods.map((p) => p.used);
const resets = (r: { periods: readonly PeriodUsage[] }) =>
  r.periods.map((p) => p.resetsAt.toISOString());

async function checks(svc: CommandQuotaService, userId: string, n: number, commandType = 'shell') {
  const out: CommandQuotaResult[] = [];
  for (let i = 0; i < n; i++) out.push(await svc.check({ userId, commandType, cost: 1 }));
  return out;
}

async function usageRow(userId: string, commandType = 'shell') {
  const r = await db.query('SELECT * FROM command_usage WHERE user_id = $1 AND command_type = $2', [
    userId,
    commandType,
  ]);
  return r.rows[0];
}

async function reservations(userId: string): Promise<number> {
  const r = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM command_reservations WHERE user_id = $1',
    [userId],
  );
  return Number(r.rows[0]!.n);
}

beforeAll(async () => {
  db = await createTestDatabase();
  quotas = await setTimeQuotas(db.url, () => now);
  ({ admin } = quotas);
});

afterAll(async () => {
  await quotas?.stop();
  await db?.drop();
});

describe('roll-over in UTC', () => {
  const utc = () => service('UTC');

  it('starts the day afresh at 00:00 UTC, and the week and month go on counting', async () => {
    await rule('day-user', 'shell', { daily: 2, weekly: 100, monthly: 1000 });
    // Wednesday 2024-03-13, the last millisecond of the day.
    at('2024-03-13T23:59:59.999Z');
    const [a, b, c] = await checks(utc(), 'day-user', 3);
    expect([a!.allowed, b!.allowed, c!.allowed]).toEqual([true, true, false]);
    expect(c!.reason).toBe('QUOTA_EXCEEDED: daily');
    expect(used(c!)).toEqual([2, 2, 2]);
    expect(resets(c!)).toEqual([
      '2024-03-14T00:00:00.000Z',
      '2024-03-18T00:00:00.000Z',
      '2024-04-01T00:00:00.000Z',
    ]);
    at('2024-03-14T00:00:00.000Z');
    const next = await utc().check({ userId: 'day-user', commandType: 'shell', cost: 1 });
    expect(next.allowed).toBe(true);
    expect(used(next)).toEqual([1, 3, 3]);
    expect(period(next, 'daily')).toMatchObject({ limit: 2, remaining: 1 });
    expect(resets(next)[0]).toBe('2024-03-15T00:00:00.000Z');
  });

  it('starts the ISO week on Monday 00:00: Sunday 23:59:59 → Monday resets weekly, not monthly', async () => {
    await rule('week-user', 'shell', { daily: 10, weekly: 2, monthly: 100 });
    // Sunday 2024-03-17.
    at('2024-03-17T23:59:59.000Z');
    const [a, b, c] = await checks(utc(), 'week-user', 3);
    expect([a!.allowed, b!.allowed, c!.allowed]).toEqual([true, true, false]);
    expect(c!.reason).toBe('QUOTA_EXCEEDED: weekly');
    expect(period(c!, 'weekly')).toMatchObject({
      limit: 2,
      used: 2,
      remaining: 0,
      resetsAt: new Date('2024-03-18T00:00:00Z'),
    });
    // Monday 2024-03-18 00:00: a new day and a new week, the same month.
    at('2024-03-18T00:00:00.000Z');
    const monday = await utc().check({ userId: 'week-user', commandType: 'shell', cost: 1 });
    expect(monday.allowed).toBe(true);
    expect(used(monday)).toEqual([1, 1, 3]);
    expect(resets(monday)).toEqual([
      '2024-03-19T00:00:00.000Z',
      '2024-03-25T00:00:00.000Z',
      '2024-04-01T00:00:00.000Z',
    ]);
    // Later that week the weekly count goes on from Monday's.
    at('2024-03-24T23:59:59.999Z');
    const sunday = await checks(utc(), 'week-user', 2);
    expect(sunday.map((r) => r.allowed)).toEqual([true, false]);
    expect(sunday[1]!.reason).toBe('QUOTA_EXCEEDED: weekly');
    expect(used(sunday[1]!)).toEqual([1, 2, 4]);
  });

  it('starts the month on the 1st at 00:00, inside an ISO week that goes on counting', async () => {
    await rule('month-user', 'shell', { daily: 10, weekly: 100, monthly: 2 });
    // Friday 2024-05-31; the ISO week runs Monday 27 May to Sunday 2 June.
    at('2024-05-31T23:59:59.999Z');
    const [a, b, c] = await checks(utc(), 'month-user', 3);
    expect([a!.allowed, b!.allowed, c!.allowed]).toEqual([true, true, false]);
    expect(c!.reason).toBe('QUOTA_EXCEEDED: monthly');
    expect(resets(c!)[2]).toBe('2024-06-01T00:00:00.000Z');
    at('2024-06-01T00:00:00.000Z');
    const june = await utc().check({ userId: 'month-user', commandType: 'shell', cost: 1 });
    expect(june.allowed).toBe(true);
    expect(used(june)).toEqual([1, 3, 1]);
    expect(resets(june)).toEqual([
      '2024-06-02T00:00:00.000Z',
      '2024-06-03T00:00:00.000Z',
      '2024-07-01T00:00:00.000Z',
    ]);
  });

  it('keeps the ISO week across a new year (2025-W01 starts on Monday 30 December 2024)', async () => {
    await rule('year-user', 'shell', { daily: 10, weekly: 3, monthly: 10 });
    at('2024-12-31T23:59:59.999Z');
    expect((await checks(utc(), 'year-user', 2)).every((r) => r.allowed)).toBe(true);
    at('2025-01-01T00:00:00.000Z');
    const [first, second] = await checks(utc(), 'year-user', 2);
    expect(first!.allowed).toBe(true);
    expect(used(first!)).toEqual([1, 3, 1]);
    expect(second!.allowed).toBe(false);
    expect(second!.reason).toBe('QUOTA_EXCEEDED: weekly');
    expect(resets(second!)[1]).toBe('2025-01-06T00:00:00.000Z');
  });

  it('names every exhausted period in the reason', async () => {
    await rule('all-user', 'shell', { daily: 1, weekly: 1, monthly: 1 });
    at('2024-08-07T12:00:00Z');
    const [a, b] = await checks(utc(), 'all-user', 2);
    expect(a!.allowed).toBe(true);
    expect(b!.reason).toBe('QUOTA_EXCEEDED: daily, weekly, monthly');
  });
});

describe('an exhausted weekly period', () => {
  it('denies although the day has room, naming weekly, and the denial consumes nothing', async () => {
    await rule('weekly-full', 'shell', { daily: 10, weekly: 3, monthly: 100 });
    const svc = service('UTC');
    // One command on each of Monday, Tuesday and Wednesday of the week of 2024-04-08.
    for (const day of ['2024-04-08', '2024-04-09', '2024-04-10']) {
      at(`${day}T09:00:00Z`);
      expect(
        (await svc.check({ userId: 'weekly-full', commandType: 'shell', cost: 1 })).allowed,
      ).toBe(true);
    }
    const rowBefore = await usageRow('weekly-full');
    const reservationsBefore = await reservations('weekly-full');
    expect(reservationsBefore).toBe(3);
    // Thursday: nothing used today, the week is full.
    at('2024-04-11T09:00:00Z');
    for (const cost of [1, 2]) {
      const denied = await svc.check({ userId: 'weekly-full', commandType: 'shell', cost });
      expect(denied).toMatchObject({
        allowed: false,
        reason: 'QUOTA_EXCEEDED: weekly',
        reservationId: null,
        delayMs: 0,
      });
      expect(period(denied, 'daily')).toMatchObject({ limit: 10, used: 0, remaining: 10 });
      expect(period(denied, 'weekly')).toMatchObject({ limit: 3, used: 3, remaining: 0 });
      expect(period(denied, 'monthly')).toMatchObject({ used: 3 });
    }
    expect(await usageRow('weekly-full')).toEqual(rowBefore);
    expect(await reservations('weekly-full')).toBe(reservationsBefore);
    // The next Monday the week is new: admitted again.
    at('2024-04-15T00:00:00Z');
    const monday = await svc.check({ userId: 'weekly-full', commandType: 'shell', cost: 1 });
    expect(monday.allowed).toBe(true);
    expect(used(monday)).toEqual([1, 1, 4]);
  });
});

describe('a time zone with daylight saving time', () => {
  it('Europe/Paris, 31 March 2024 (23 h long): resets at local midnight, resetsAt exact', async () => {
    const paris = service('Europe/Paris');
    await rule('paris-spring', 'shell', { daily: 2, weekly: 100, monthly: 100 });
    // Saturday 30 March, 23:59:59.999 CET (UTC+1).
    at('2024-03-30T22:59:59.999Z');
    const sat = await checks(paris, 'paris-spring', 3);
    expect(sat.map((r) => r.allowed)).toEqual([true, true, false]);
    expect(resets(sat[2]!)[0]).toBe('2024-03-30T23:00:00.000Z');
    // Sunday 31 March 00:00 CET: a new day, although in UTC it is still the 30th.
    at('2024-03-30T23:00:00.000Z');
    const sunStart = await checks(paris, 'paris-spring', 3);
    expect(sunStart.map((r) => r.allowed)).toEqual([true, true, false]);
    expect(used(sunStart[1]!)).toEqual([2, 4, 4]);
    // The day ends at 00:00 CEST (UTC+2) on 1 April: 23 hours after it started. The day, the
    // ISO week (Sunday is its last day) and the month all end at that instant.
    const ends = resets(sunStart[2]!);
    expect(ends).toEqual([
      '2024-03-31T22:00:00.000Z',
      '2024-03-31T22:00:00.000Z',
      '2024-03-31T22:00:00.000Z',
    ]);
    expect(Date.parse(ends[0]!) - now.getTime()).toBe(23 * HOUR);
    // The last millisecond of Sunday, local time: still full.
    at('2024-03-31T21:59:59.999Z');
    const sunEnd = await paris.check({ userId: 'paris-spring', commandType: 'shell', cost: 1 });
    expect(sunEnd.allowed).toBe(false);
    expect(sunEnd.reason).toBe('QUOTA_EXCEEDED: daily');
    // Monday 1 April 00:00 CEST: every period new.
    at('2024-03-31T22:00:00.000Z');
    const mon = await paris.check({ userId: 'paris-spring', commandType: 'shell', cost: 1 });
    expect(mon.allowed).toBe(true);
    expect(used(mon)).toEqual([1, 1, 1]);
    expect(resets(mon)).toEqual([
      '2024-04-01T22:00:00.000Z',
      '2024-04-07T22:00:00.000Z',
      '2024-04-30T22:00:00.000Z',
    ]);
  });

  it('America/New_York, 3 November 2024 (25 h long): resets at local midnight, resetsAt exact', async () => {
    const ny = service('America/New_York');
    await rule('ny-fall', 'shell', { daily: 1 });
    // Sunday 3 November 00:00 EDT (UTC-4).
    at('2024-11-03T04:00:00.000Z');
    const start = await checks(ny, 'ny-fall', 2);
    expect(start.map((r) => r.allowed)).toEqual([true, false]);
    // The day ends at 00:00 EST (UTC-5) on 4 November: 25 hours later.
    expect(resets(start[1]!)[0]).toBe('2024-11-04T05:00:00.000Z');
    expect(Date.parse(resets(start[1]!)[0]!) - now.getTime()).toBe(25 * HOUR);
    // 24 hours later it is 23:00 EST on the 3rd: the same day, still full.
    at('2024-11-04T04:00:00.000Z');
    const late = await ny.check({ userId: 'ny-fall', commandType: 'shell', cost: 1 });
    expect(late.allowed).toBe(false);
    expect(late.reason).toBe('QUOTA_EXCEEDED: daily');
    at('2024-11-04T04:59:59.999Z');
    expect((await ny.check({ userId: 'ny-fall', commandType: 'shell', cost: 1 })).allowed).toBe(
      false,
    );
    // Local midnight.
    at('2024-11-04T05:00:00.000Z');
    const next = await ny.check({ userId: 'ny-fall', commandType: 'shell', cost: 1 });
    expect(next.allowed).toBe(true);
    expect(resets(next)[0]).toBe('2024-11-05T05:00:00.000Z');
  });
  it('America/Santiago, 8 September 2024 (clocks jump from 00:00 to 01:00): the day starts at the jump', async () => {
    const santiago = service('America/Santiago');
    await rule('santiago', 'shell', { daily: 1 });
    // Saturday 7 September 23:59:59.999 -04.
    at('2024-09-08T03:59:59.999Z');
    const sat = await checks(santiago, 'santiago', 2);
    expect(sat.map((r) => r.allowed)).toEqual([true, false]);
    expect(resets(sat[1]!)[0]).toBe('2024-09-08T04:00:00.000Z');
    // The next instant is Sunday 01:00 -03: local midnight never happens, the day starts here
    // and lasts 23 hours.
    at('2024-09-08T04:00:00.000Z');
    const sun = await checks(santiago, 'santiago', 2);
    expect(sun.map((r) => r.allowed)).toEqual([true, false]);
    expect(resets(sun[1]!)[0]).toBe('2024-09-09T03:00:00.000Z');
    expect(Date.parse(resets(sun[1]!)[0]!) - now.getTime()).toBe(23 * HOUR);
  });
});

describe('a per-user shell rule of 3 a day', () => {
  it('admits 3, denies the 4th naming daily; status shows used 3, remaining 0, next local midnight', async () => {
    const paris = service('Europe/Paris');
    await rule('three-a-day', 'shell', { daily: 3 });
    // 23:30 CEST on 15 July 2024: local midnight is at 22:00 UTC, two hours before UTC's.
    at('2024-07-15T21:30:00Z');
    const answers = await checks(paris, 'three-a-day', 4);
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true, false]);
    expect(answers.slice(0, 3).every((a) => a.reservationId !== null)).toBe(true);
    expect(answers[3]).toMatchObject({
      allowed: false,
      reason: 'QUOTA_EXCEEDED: daily',
      tier: 'default',
      reservationId: null,
    });
    expect(period(answers[3]!, 'daily')).toEqual({
      period: 'daily',
      limit: 3,
      used: 3,
      remaining: 0,
      resetsAt: new Date('2024-07-15T22:00:00Z'),
    });
    // The user's rule has no weekly or monthly limit: those are unlimited for shell.
    expect(period(answers[3]!, 'weekly')).toMatchObject({ limit: null, remaining: null, used: 3 });

    const status = await paris.status('three-a-day');
    expect(status.tier).toBe('default');
    const shell = status.commands.find((c) => c.commandType === 'shell')!;
    expect(shell.periods[0]).toEqual({
      period: 'daily',
      limit: 3,
      used: 3,
      remaining: 0,
      resetsAt: new Date('2024-07-15T22:00:00Z'),
    });
    expect(resets(shell)).toEqual([
      '2024-07-15T22:00:00.000Z',
      '2024-07-21T22:00:00.000Z',
      '2024-07-31T22:00:00.000Z',
    ]);
    // Other command types are listed with the defaults and nothing used.
    expect(status.commands.find((c) => c.commandType === 'code')!.periods[0]).toMatchObject({
      limit: 300,
      used: 0,
      remaining: 300,
    });

    // Another user has the default shell rule (500 a day).
    const other = await paris.check({ userId: 'someone-else', commandType: 'shell', cost: 1 });
    expect(period(other, 'daily')).toMatchObject({ limit: 500, used: 1, remaining: 499 });

    // After local midnight the status reads the new day, before any new decision.
    at('2024-07-15T22:00:00Z');
    const tomorrow = await paris.status('three-a-day');
    expect(tomorrow.commands.find((c) => c.commandType === 'shell')!.periods[0]).toEqual({
      period: 'daily',
      limit: 3,
      used: 0,
      remaining: 3,
      resetsAt: new Date('2024-07-16T22:00:00Z'),
    });
    expect(
      (await paris.check({ userId: 'three-a-day', commandType: 'shell', cost: 1 })).allowed,
    ).toBe(true);
  });
});
