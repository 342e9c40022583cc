import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { Algorithm, Period, QuotaCallError, RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

let db: TestDatabase;
let server: TestServer;

const ms = (d: { seconds: number; nanos: number } | undefined) =>
  d ? d.seconds * 1000 + d.nanos / 1e6 : 0;
const req = (r: Partial<CheckLimitRequest>) => CheckLimitRequest.fromPartial(r);
const rule = (r: Partial<RateLimitRule>) =>
  RateLimitRule.fromPartial({ match: '*', window: { seconds: 60, nanos: 0 }, ...r });

async function upsert(r: Partial<RateLimitRule>) {
  return server.client.admin.upsertRateLimitRule({ rule: rule(r) });
}

async function expectInvalid(call: Promise<unknown>, field: string) {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QuotaCallError);
  expect((err as QuotaCallError).code).toBe(status.INVALID_ARGUMENT);
  expect((err as QuotaCallError).details).toContain(field);
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

beforeEach(async () => {
  for (const r of (await server.client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED }))
    .rules) {
    await server.client.admin.deleteRateLimitRule({ name: r.name });
  }
});

describe('CheckLimit', () => {
  it('admits 5 calls of a 5 per 60 s user rule and denies the 6th with remaining 0 and retry_after', async () => {
    await upsert({ name: 'user-5', scope: Scope.SCOPE_USER, limit: 5 });
    const answers = [];
    for (let i = 0; i < 6; i++)
      answers.push(await server.client.quota.checkLimit(req({ userId: 'alice' })));
    expect(answers.slice(0, 5).every((a) => a.allowed)).toBe(true);
    expect(answers.slice(0, 5).map((a) => a.limits[0]?.remaining)).toEqual([4, 3, 2, 1, 0]);
    const sixth = answers[5]!;
    expect(sixth.allowed).toBe(false);
    expect(sixth.degraded).toBe(false);
    expect(sixth.limits[0]).toMatchObject({
      rule: 'user-5',
      scope: Scope.SCOPE_USER,
      key: 'alice',
      limit: 5,
      remaining: 0,
      exceeded: true,
    });
    expect(ms(sixth.retryAfter)).toBeGreaterThan(0);
    expect(ms(sixth.retryAfter)).toBeLessThanOrEqual(120_000);
    expect(ms(sixth.limits[0]!.window)).toBe(60_000);
  });

  it('lets an exact-match rule override the scope default', async () => {
    await upsert({ name: 'user-default', scope: Scope.SCOPE_USER, limit: 5 });
    await upsert({ name: 'user-vip', scope: Scope.SCOPE_USER, match: 'vip', limit: 2 });
    const vip = [];
    for (let i = 0; i < 3; i++)
      vip.push(await server.client.quota.checkLimit(req({ userId: 'vip' })));
    expect(vip.map((a) => a.allowed)).toEqual([true, true, false]);
    expect(vip.every((a) => a.limits.length === 1 && a.limits[0]!.rule === 'user-vip')).toBe(true);
    const other = await server.client.quota.checkLimit(req({ userId: 'bob' }));
    expect(other.limits.map((l) => l.rule)).toEqual(['user-default']);
  });

  it('counts a shadow rule but never denies by it', async () => {
    await upsert({ name: 'shadow-1', scope: Scope.SCOPE_IP, limit: 1, shadow: true });
    const answers = [];
    for (let i = 0; i < 3; i++)
      answers.push(await server.client.quota.checkLimit(req({ ip: '10.0.0.1' })));
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true]);
    expect(answers.map((a) => a.limits[0]!.exceeded)).toEqual([false, true, true]);
    expect(answers.every((a) => a.limits[0]!.shadow)).toBe(true);
  });

  it('consumes nothing from the user limit when the IP limit denies', async () => {
    await upsert({ name: 'ip-1', scope: Scope.SCOPE_IP, limit: 1 });
    await upsert({ name: 'user-5', scope: Scope.SCOPE_USER, limit: 5 });
    const first = await server.client.quota.checkLimit(req({ ip: '192.0.2.1', userId: 'carol' }));
    expect(first.allowed).toBe(true);
    const denied = await server.client.quota.checkLimit(req({ ip: '192.0.2.1', userId: 'carol' }));
    expect(denied.allowed).toBe(false);
    expect(denied.limits.find((l) => l.rule === 'ip-1')!.exceeded).toBe(true);
    // The denied call reports the user limit as it stands: nothing was counted.
    expect(denied.limits.find((l) => l.rule === 'user-5')!.remaining).toBe(4);
    const third = await server.client.quota.checkLimit(req({ ip: '192.0.2.2', userId: 'carol' }));
    expect(third.allowed).toBe(true);
    expect(third.limits.find((l) => l.rule === 'user-5')!.remaining).toBe(3);
  });

  it('applies several windows of one scope, all of which must admit', async () => {
    await upsert({ name: 'key-per-min', scope: Scope.SCOPE_API_KEY, limit: 3 });
    await upsert({
      name: 'key-per-hour',
      scope: Scope.SCOPE_API_KEY,
      limit: 2,
      window: { seconds: 3600, nanos: 0 },
    });
    const answers = [];
    for (let i = 0; i < 3; i++)
      answers.push(await server.client.quota.checkLimit(req({ apiKey: 'k1' })));
    expect(answers.map((a) => a.allowed)).toEqual([true, true, false]);
    expect(answers[2]!.limits.map((l) => [l.rule, l.exceeded])).toEqual([
      ['key-per-hour', true],
      ['key-per-min', false],
    ]);
  });

  it('counts a request_id once and returns the first answer on retry', async () => {
    await upsert({ name: 'user-5', scope: Scope.SCOPE_USER, limit: 5 });
    const first = await server.client.quota.checkLimit(req({ userId: 'dave', requestId: 'r-1' }));
    const retry = await server.client.quota.checkLimit(req({ userId: 'dave', requestId: 'r-1' }));
    expect(retry).toEqual(first);
    const next = await server.client.quota.checkLimit(req({ userId: 'dave', requestId: 'r-2' }));
    expect(next.limits[0]!.remaining).toBe(3);
    const rows = await db.query<{ curr: string }>(
      `SELECT curr FROM rate_limit_counters WHERE rule = 'user-5' AND key = 'dave'`,
    );
    expect(Number(rows.rows[0]!.curr)).toBe(2);
  });

  it('counts `hits` units and denies a call whose hits do not fit', async () => {
    await upsert({ name: 'res-10', scope: Scope.SCOPE_RESOURCE, limit: 10 });
    const a = await server.client.quota.checkLimit(req({ resource: '/upload', hits: 7 }));
    expect(a.limits[0]!.remaining).toBe(3);
    const b = await server.client.quota.checkLimit(req({ resource: '/upload', hits: 4 }));
    expect(b.allowed).toBe(false);
    const c = await server.client.quota.checkLimit(req({ resource: '/upload', hits: 3 }));
    expect(c.allowed).toBe(true);
  });

  it('resets a fixed window at its boundary', async () => {
    await upsert({
      name: 'fixed',
      scope: Scope.SCOPE_USER,
      limit: 2,
      window: { seconds: 1, nanos: 0 },
      algorithm: Algorithm.ALGORITHM_FIXED_WINDOW,
    });
    // Start just after a boundary so that two calls land in one window.
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
    const a = await server.client.quota.checkLimit(req({ userId: 'erin' }));
    const b = await server.client.quota.checkLimit(req({ userId: 'erin' }));
    const c = await server.client.quota.checkLimit(req({ userId: 'erin' }));
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false]);
    expect(ms(c.retryAfter)).toBeLessThanOrEqual(1000);
    await new Promise((r) => setTimeout(r, ms(c.retryAfter) + 50));
    expect((await server.client.quota.checkLimit(req({ userId: 'erin' }))).allowed).toBe(true);
  });

  it('lets a token bucket burst to its limit and refill at limit per window', async () => {
    await upsert({
      name: 'bucket',
      scope: Scope.SCOPE_USER,
      limit: 5,
      // One token back a second: room for a slow box between calls that must fall within one
      // refill (with 200 ms a token, a loaded run once refilled two before the last call).
      window: { seconds: 5, nanos: 0 },
      algorithm: Algorithm.ALGORITHM_TOKEN_BUCKET,
    });
    const burst = [];
    for (let i = 0; i < 6; i++)
      burst.push((await server.client.quota.checkLimit(req({ userId: 'fay' }))).allowed);
    expect(burst).toEqual([true, true, true, true, true, false]);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await server.client.quota.checkLimit(req({ userId: 'fay' }))).allowed).toBe(true);
    expect((await server.client.quota.checkLimit(req({ userId: 'fay' }))).allowed).toBe(false);
  });

  it('counts a daily period rule until the next local midnight', async () => {
    await upsert({
      name: 'daily',
      scope: Scope.SCOPE_API_KEY,
      limit: 2,
      window: undefined,
      period: Period.PERIOD_DAILY,
    });
    const a = await server.client.quota.checkLimit(req({ apiKey: 'daily-key' }));
    expect(a.allowed).toBe(true);
    const now = new Date();
    const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    expect(Math.abs(ms(a.limits[0]!.resetAfter) - (midnight - Date.now()))).toBeLessThan(5000);
    expect(ms(a.limits[0]!.window)).toBe(86_400_000);
  });

  it('admits a call no rule applies to without counting', async () => {
    const a = await server.client.quota.checkLimit(req({ ip: '203.0.113.9' }));
    expect(a).toMatchObject({ allowed: true, limits: [], degraded: false, throttleFactor: 1 });
  });

  it('answers INVALID_ARGUMENT naming the field for bad requests, and writes nothing', async () => {
    await upsert({ name: 'user-5', scope: Scope.SCOPE_USER, limit: 5 });
    const before = await db.query<{ n: string }>(
      'SELECT (SELECT count(*) FROM rate_limit_rules) + (SELECT count(*) FROM rate_limit_counters) AS n',
    );
    await expectInvalid(server.client.quota.checkLimit(req({})), 'user_id');
    await expectInvalid(
      server.client.quota.checkLimit(req({ userId: 'x'.repeat(257) })),
      'user_id',
    );
    await expectInvalid(
      server.client.quota.checkLimit(req({ ip: '1.2.3.4', apiKey: 'é'.repeat(129) })),
      'api_key',
    );
    await expectInvalid(upsert({ name: '', scope: Scope.SCOPE_USER, limit: 1 }), 'rule.name');
    await expectInvalid(
      upsert({ name: 'zero', scope: Scope.SCOPE_USER, limit: 1, window: { seconds: 0, nanos: 0 } }),
      'rule.window',
    );
    await expectInvalid(
      upsert({ name: 'no-scope', scope: Scope.SCOPE_UNSPECIFIED, limit: 1 }),
      'rule.scope',
    );
    await expectInvalid(upsert({ name: 'bad-scope', scope: 9 as Scope, limit: 1 }), 'rule.scope');
    await expectInvalid(
      upsert({ name: 'bad-algo', scope: Scope.SCOPE_USER, limit: 1, algorithm: 7 as Algorithm }),
      'rule.algorithm',
    );
    await expectInvalid(
      upsert({ name: 'no-limit', scope: Scope.SCOPE_USER, limit: 0 }),
      'rule.limit',
    );
    const after = await db.query<{ n: string }>(
      'SELECT (SELECT count(*) FROM rate_limit_rules) + (SELECT count(*) FROM rate_limit_counters) AS n',
    );
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });
});

describe('AdminService rules', () => {
  it('upserts, lists, disables and deletes a rule', async () => {
    const stored = await upsert({
      name: 'r1',
      scope: Scope.SCOPE_IP,
      limit: 10,
      description: 'ten',
    });
    expect(stored.rule).toMatchObject({
      name: 'r1',
      enabled: true,
      algorithm: Algorithm.ALGORITHM_SLIDING_WINDOW,
      match: '*',
    });
    expect(
      (await server.client.admin.listRateLimitRules({ scope: Scope.SCOPE_IP })).rules.map(
        (r) => r.name,
      ),
    ).toEqual(['r1']);
    const disabled = await server.client.admin.setRateLimitRuleEnabled({
      name: 'r1',
      enabled: false,
    });
    expect(disabled.rule!.enabled).toBe(false);
    expect((await server.client.quota.checkLimit(req({ ip: '10.1.1.1' }))).limits).toEqual([]);
    await server.client.admin.deleteRateLimitRule({ name: 'r1' });
    const missing = await server.client.admin
      .deleteRateLimitRule({ name: 'r1' })
      .catch((e: QuotaCallError) => e);
    expect((missing as QuotaCallError).code).toBe(status.NOT_FOUND);
  });
});
