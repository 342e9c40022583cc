import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Algorithm, RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { storedApiKey } from '../support/apiKeys.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

let db: TestDatabase;
let a: TestServer;
let b: TestServer;

const req = (r: Partial<CheckLimitRequest>) => CheckLimitRequest.fromPartial(r);

beforeAll(async () => {
  db = await createTestDatabase();
  // The claim here is atomicity, not latency: a generous bound keeps a busy CI box from
  // turning slow answers into failure-mode ones.
  const env = { QUOTA_DB_TIMEOUT_MS: '5000' };
  [a, b] = await Promise.all([startTestServer(db.url, env), startTestServer(db.url, env)]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

describe('two replicas on one database', () => {
  it('admit exactly 50 of 200 concurrent calls on one key with a limit of 50', async () => {
    await a.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'hot-50',
        scope: Scope.SCOPE_USER,
        match: '*',
        limit: 50,
        window: { seconds: 60, nanos: 0 },
      }),
    });
    await waitFor(
      async () => (await b.client.quota.checkLimit(req({ userId: 'probe' }))).limits.length === 1,
    );
    const calls = Array.from({ length: 200 }, (_, i) =>
      (i % 2 === 0 ? a : b).client.quota.checkLimit(req({ userId: 'hot' })),
    );
    const answers = await Promise.all(calls);
    expect(answers.filter((x) => x.degraded)).toHaveLength(0);
    expect(answers.filter((x) => x.allowed)).toHaveLength(50);
    const row = await db.query<{ curr: string }>(
      `SELECT curr FROM rate_limit_counters WHERE rule = 'hot-50' AND key = 'hot'`,
    );
    expect(Number(row.rows[0]!.curr)).toBe(50);
  });

  it('apply a rule written through one replica on the other within a second', async () => {
    await a.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'fresh',
        scope: Scope.SCOPE_RESOURCE,
        match: '/x',
        limit: 1,
        window: { seconds: 60, nanos: 0 },
      }),
    });
    const started = Date.now();
    // The cache, not just the table: b must apply the rule to a call.
    let applied = false;
    while (Date.now() - started < 1000 && !applied) {
      applied =
        (
          await b.client.quota.checkLimit(
            req({ resource: '/x', requestId: `p-${Date.now()}-${Math.random()}` }),
          )
        ).limits.length === 1;
      if (!applied) await new Promise((r) => setTimeout(r, 20));
    }
    expect(applied).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('two replicas under concurrency', () => {
  it('count one request_id once when it arrives many times at once on both', async () => {
    await a.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'idem',
        scope: Scope.SCOPE_API_KEY,
        match: '*',
        limit: 100,
        window: { seconds: 60, nanos: 0 },
      }),
    });
    await waitFor(
      async () => (await b.client.quota.checkLimit(req({ apiKey: 'probe' }))).limits.length === 1,
    );
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).client.quota.checkLimit(req({ apiKey: 'k-idem', requestId: 'same-id' })),
      ),
    );
    expect(answers.filter((x) => x.degraded)).toHaveLength(0);
    expect(new Set(answers.map((x) => x.limits[0]!.remaining))).toEqual(new Set([99]));
    const row = await db.query<{ curr: string }>(
      `SELECT curr FROM rate_limit_counters WHERE rule = 'idem' AND key = $1`,
      [await storedApiKey(db, 'k-idem')],
    );
    expect(Number(row.rows[0]!.curr)).toBe(1);
  });

  it('never admit more than a fixed window allows while calls cross window boundaries', async () => {
    await a.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'fixed-1s',
        scope: Scope.SCOPE_RESOURCE,
        match: '*',
        limit: 10,
        window: { seconds: 1, nanos: 0 },
        algorithm: Algorithm.ALGORITHM_FIXED_WINDOW,
      }),
    });
    await waitFor(
      async () => (await b.client.quota.checkLimit(req({ resource: 'probe' }))).limits.length === 1,
    );
    const admittedPerWindow = new Map<number, number>();
    const until = Date.now() + 2500;
    const worker = async (s: TestServer) => {
      while (Date.now() < until) {
        const res = await s.client.quota.checkLimit(req({ resource: '/boundary' }));
        if (!res.allowed) continue;
        const l = res.limits[0]!;
        // The window a call counted in, from the database's own answer: when it ends.
        const end = Math.round(
          (Date.now() + l.resetAfter!.seconds * 1000 + l.resetAfter!.nanos / 1e6) / 1000,
        );
        admittedPerWindow.set(end, (admittedPerWindow.get(end) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, i) => worker(i % 2 ? a : b)));
    expect(admittedPerWindow.size).toBeGreaterThanOrEqual(2);
    for (const n of admittedPerWindow.values()) expect(n).toBeLessThanOrEqual(10);
  });
});
