import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Period, typesV1 } from '@quota-authority/client';
import {
  CheckCommandQuotaRequest,
  type CheckCommandQuotaResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { report } from '../support/loadStreams.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';

// Tiers and host load over gRPC, two real servers on one database. The load reaches the
// decision through the real path: ReportLoad for a host, then CheckCommandQuota naming it.

let db: TestDatabase;
let a: TestServer;
let b: TestServer;

const ms = (d: { seconds: number; nanos: number } | undefined) =>
  d ? d.seconds * 1000 + d.nanos / 1e6 : 0;
const check = (server: TestServer, r: Partial<CheckCommandQuotaRequest>) =>
  server.client.quota.checkCommandQuota(
    CheckCommandQuotaRequest.fromPartial({ commandType: 'tiered', ...r }),
  );
const daily = (r: CheckCommandQuotaResponse) =>
  r.periods.find((p) => p.period === Period.PERIOD_DAILY)!;

async function checks(server: TestServer, userId: string, n: number, host = '') {
  const out: CheckCommandQuotaResponse[] = [];
  for (let i = 0; i < n; i++) out.push(await check(server, { userId, host }));
  return out;
}

async function usageOf(userId: string) {
  const rows = await db.query<{ day_used: string }>(
    'SELECT day_used FROM command_usage WHERE user_id = $1',
    [userId],
  );
  const reservations = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM command_reservations WHERE user_id = $1',
    [userId],
  );
  return {
    used: rows.rows.map((r) => Number(r.day_used)),
    reservations: Number(reservations.rows[0]!.n),
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  const env = { QUOTA_DB_TIMEOUT_MS: '5000', QUOTA_LOAD_INTERVAL_MS: '600000' };
  [a, b] = await Promise.all([
    startTestServer(db.url, { ...env, QUOTA_HOST_NAME: 'replica-a' }),
    startTestServer(db.url, { ...env, QUOTA_HOST_NAME: 'replica-b' }),
  ]);
  // Every user: 2 a day, 5 a week, 9 a month of command type "tiered".
  await a.client.admin.upsertCommandQuotaRule({
    rule: typesV1.CommandQuotaRule.fromPartial({
      userId: '*',
      commandType: 'tiered',
      daily: 2,
      weekly: 5,
      monthly: 9,
    }),
  });
  // The rule reaches replica B through the change feed.
  await waitFor(async () => {
    const s = await b.client.quota.getQuotaStatus({ userId: 'probe' });
    return s.commands.some((c) => c.commandType === 'tiered');
  });
  // Hosts at 85 %, 92 % and 97 % CPU, reported to replica A.
  for (const [host, cpuPercent] of [
    ['exec-85', 85],
    ['exec-92', 92],
    ['exec-97', 97],
  ] as const) {
    await a.client.quota.reportLoad(report({ host, cpuPercent, memoryPercent: 10 }));
  }
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

describe('tiers', () => {
  it('premium sees 10x the limits: 20 a day admitted, the 21st denied', async () => {
    await a.client.admin.setUserTier({ userId: 'prem', tier: 'premium' });
    const answers = await checks(a, 'prem', 21);
    expect(answers.filter((r) => r.allowed)).toHaveLength(20);
    expect(answers.slice(0, 20).every((r) => r.allowed && r.tier === 'premium')).toBe(true);
    expect(answers[20]).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED: daily' });
    expect(answers[20]!.periods.map((p) => [p.limit, p.used, p.remaining])).toEqual([
      [20, 20, 0],
      [50, 20, 30],
      [90, 20, 70],
    ]);
    // A default user has the rule's own limits.
    const plain = await checks(a, 'plain', 3);
    expect(plain.map((r) => r.allowed)).toEqual([true, true, false]);
    expect(plain[2]!.periods.map((p) => p.limit)).toEqual([2, 5, 9]);
    expect(plain[2]!.tier).toBe('default');
  });

  it('enterprise is unlimited and never delayed, at throttle factor 0.3', async () => {
    await a.client.admin.setUserTier({ userId: 'ent', tier: 'enterprise' });
    const answers = await checks(a, 'ent', 25, 'exec-92');
    for (const r of answers) {
      expect(r).toMatchObject({ allowed: true, tier: 'enterprise', throttleFactor: 0.3 });
      expect(ms(r.delay)).toBe(0);
      expect(r.reservationId).not.toBe('');
      expect(r.periods.map((p) => [p.unlimited, p.limit, p.remaining])).toEqual([
        [true, 0, 0],
        [true, 0, 0],
        [true, 0, 0],
      ]);
    }
    expect(answers[24]!.periods.map((p) => p.used)).toEqual([25, 25, 25]);
    // A default user on the same host waits (1 - 0.3) s.
    const plain = await check(a, { userId: 'plain-92', host: 'exec-92' });
    expect(plain.allowed).toBe(true);
    expect(ms(plain.delay)).toBe(700);
  });
});

describe('host load', () => {
  it('a host at 85 % CPU gives a default user a delay of 400 ms (factor 0.6)', async () => {
    const r = await check(a, { userId: 'loaded-85', host: 'exec-85' });
    expect(r).toMatchObject({ allowed: true, tier: 'default', throttleFactor: 0.6 });
    expect(r.delay).toEqual({ seconds: 0, nanos: 400_000_000 });
    // No host, or one nobody reported: factor 1, no delay.
    const idle = await check(a, { userId: 'loaded-85', host: 'exec-unknown' });
    expect(idle.throttleFactor).toBe(1);
    expect(ms(idle.delay)).toBe(0);
  });

  it('a host at 97 % CPU denies with SYSTEM_OVERLOADED and consumes nothing', async () => {
    // One command counted first, so that there is a usage row to leave unchanged.
    expect((await check(a, { userId: 'loaded-97' })).allowed).toBe(true);
    const before = await usageOf('loaded-97');
    expect(before).toEqual({ used: [1], reservations: 1 });
    for (const [userId, used] of [
      ['loaded-97', 1],
      ['loaded-97-new', 0],
    ] as const) {
      const r = await check(a, { userId, host: 'exec-97', requestId: `overloaded-${userId}` });
      expect(r).toMatchObject({
        allowed: false,
        reason: 'SYSTEM_OVERLOADED',
        throttleFactor: 0,
        reservationId: '',
        degraded: false,
      });
      // The periods as they stand, read, not counted.
      expect(r.periods.map((p) => [p.used, p.resetsAt !== undefined])).toEqual([
        [used, true],
        [used, true],
        [used, true],
      ]);
      expect(ms(r.delay)).toBe(0);
    }
    expect(await usageOf('loaded-97')).toEqual(before);
    expect(await usageOf('loaded-97-new')).toEqual({ used: [], reservations: 0 });
    const keys = await db.query(`SELECT 1 FROM idempotency_keys WHERE key LIKE '%overloaded-%'`);
    expect(keys.rowCount).toBe(0);
  });

  it('the load reported to one replica reaches the other replica', async () => {
    // A new user per poll: each poll is a decision, and the rule admits 2 a day.
    let polls = 0;
    let r: CheckCommandQuotaResponse | undefined;
    await waitFor(async () => {
      r = await check(b, { userId: `via-b-${polls++}`, host: 'exec-85' });
      return r.throttleFactor === 0.6;
    });
    expect(r).toMatchObject({ allowed: true, throttleFactor: 0.6 });
    expect(ms(r!.delay)).toBe(400);
  });
});

describe('tier changes', () => {
  it('SetUserTier on replica A reaches replica B within a second, no restart', async () => {
    expect((await b.client.quota.getQuotaStatus({ userId: 'upgraded' })).tier).toBe('default');
    const set = await a.client.admin.setUserTier({ userId: 'upgraded', tier: 'premium' });
    expect(set).toEqual({ userId: 'upgraded', tier: 'premium' });
    const started = Date.now();
    await waitFor(
      async () => (await b.client.quota.getQuotaStatus({ userId: 'upgraded' })).tier === 'premium',
      1000,
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThanOrEqual(1000);
    const onB = await check(b, { userId: 'upgraded' });
    expect(onB.tier).toBe('premium');
    expect(daily(onB)).toMatchObject({ limit: 20, used: 1, remaining: 19 });
    expect((await b.client.admin.getUserTier({ userId: 'upgraded' })).tier).toBe('premium');

    // Back to default (the row goes) and up to enterprise: B follows each within a second.
    await a.client.admin.setUserTier({ userId: 'upgraded', tier: 'default' });
    await waitFor(
      async () => (await b.client.quota.getQuotaStatus({ userId: 'upgraded' })).tier === 'default',
      1000,
    );
    expect(daily(await check(b, { userId: 'upgraded' }))).toMatchObject({ limit: 2, used: 2 });
    await a.client.admin.setUserTier({ userId: 'upgraded', tier: 'enterprise' });
    await waitFor(
      async () =>
        (await b.client.quota.getQuotaStatus({ userId: 'upgraded' })).tier === 'enterprise',
      1000,
    );
    const unlimited = await check(b, { userId: 'upgraded' });
    expect(unlimited.allowed).toBe(true);
    expect(daily(unlimited).unlimited).toBe(true);
  });

  it('a rule change on replica A reaches replica B within a second', async () => {
    await a.client.admin.upsertCommandQuotaRule({
      rule: typesV1.CommandQuotaRule.fromPartial({
        userId: 'ruled',
        commandType: 'tiered',
        daily: 7,
      }),
    });
    await waitFor(async () => {
      const s = await b.client.quota.getQuotaStatus({ userId: 'ruled' });
      return s.commands.find((c) => c.commandType === 'tiered')?.periods[0]?.limit === 7;
    }, 1000);
  });
});
