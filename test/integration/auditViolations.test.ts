import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '@quota-authority/client';
import { apiKeyPrefix } from '../../src/audit/apiKeyPrefix.js';
import { storedApiKey } from '../support/apiKeys.js';
import { checkMany, minuteRule, upsertEverywhere } from '../support/auditCalls.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';
import { sqlSession } from '../support/sqlSession.js';

// Violations through real servers on one database: a burst counted exactly (two replicas, a
// buffer far smaller than the burst), what a row records and the filters, and a flush that
// the database refuses for a while.

let db: TestDatabase;
let c: TestServer;

const ENV = {
  // The claim is exact counting, not latency: slow answers must not become failure-mode ones.
  QUOTA_DB_TIMEOUT_MS: '5000',
  // The least the setting takes: 10,000 distinct denials overflow it a hundred times over.
  QUOTA_AUDIT_BUFFER: '100',
  QUOTA_LOAD_INTERVAL_MS: '600000',
};
const DAY_AGO = () => new Date(Date.now() - 86_400_000);
const SOON = () => new Date(Date.now() + 3_600_000);

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await c?.stop();
  await db?.drop();
});

describe('the violation audit', () => {
  it('counts exactly the 10,000 denials callers saw in a burst on two replicas', async () => {
    const [a, b] = await Promise.all([startTestServer(db.url, ENV), startTestServer(db.url, ENV)]);
    try {
      await upsertEverywhere([a.client, b.client], minuteRule({ name: 'burst-1' }));
      const first = await checkMany([a.client], 1, 1, () => ({ userId: 'flood' }));
      expect(first.allowed).toBe(1);
      // Each call its own path: no two denials are identical, so the buffer overflows and
      // denials are folded, which must not lose one.
      const seen = await checkMany([a.client, b.client], 10_000, 64, (i) => ({
        userId: 'flood',
        path: `/p/${i}`,
      }));
      expect(seen).toEqual({ allowed: 0, denied: 10_000, errors: 0, degraded: 0 });
      await a.client.admin.deleteRateLimitRule({ name: 'burst-1' });
    } finally {
      // Stopping writes what each replica still buffers (the final flush).
      await Promise.all([a.stop(), b.stop()]);
    }
    c = await startTestServer(db.url, ENV);
    const report = await c.client.admin.getViolations({
      since: DAY_AGO(),
      until: SOON(),
      rule: '',
      userId: '',
      ip: '',
      limit: 1000,
    });
    expect(report.total).toBe(10_000);
    expect(report.byRule).toEqual([{ rule: 'burst-1', count: 10_000 }]);
    expect(report.perHour.reduce((n, h) => n + h.count, 0)).toBe(10_000);
    // Folded rows keep the count without details; detailed rows keep the path.
    expect(report.recent.some((v) => v.key === '' && v.path === '' && v.count > 1)).toBe(true);
    expect(report.recent.some((v) => v.key === 'flood' && v.path.startsWith('/p/'))).toBe(true);
    const stored = await db.query<{ n: string; folded: string }>(
      `SELECT sum(count)::text AS n, sum(count) FILTER (WHERE key = '')::text AS folded
         FROM violations WHERE rule = 'burst-1'`,
    );
    expect(Number(stored.rows[0]!.n)).toBe(10_000);
    expect(Number(stored.rows[0]!.folded)).toBeGreaterThan(0);
  });

  it('records the caller fields, an API key only as a hash prefix, and filters by rule, user and IP', async () => {
    c ??= await startTestServer(db.url, ENV);
    await upsertEverywhere(
      [c.client],
      minuteRule({ name: 'key-1', scope: Scope.SCOPE_API_KEY }),
      (user) => ({ apiKey: user }),
    );
    const call = {
      ip: '::ffff:198.51.100.7',
      userId: 'filter-user',
      apiKey: 'filter-secret-key',
      // A query string and a fragment may carry secrets: not kept.
      path: '/v1/things?api_key=PATH-SECRET-1#token=PATH-SECRET-2',
      userAgent: 'curl/8',
      host: 'web-1',
    };
    const seen = await checkMany([c.client], 4, 1, () => call);
    expect(seen).toMatchObject({ allowed: 1, denied: 3 });
    const hash = await storedApiKey(db, 'filter-secret-key');
    const read = (f: { rule?: string; userId?: string; ip?: string; limit?: number }) =>
      c.client.admin.getViolations({
        since: DAY_AGO(),
        until: SOON(),
        rule: f.rule ?? '',
        userId: f.userId ?? '',
        ip: f.ip ?? '',
        limit: f.limit ?? 0,
      });
    await waitFor(async () => (await read({ rule: 'key-1' })).total === 3, 10_000);
    const report = await read({ ip: '198.051.100.7' });
    expect(report.total).toBe(3);
    expect(report.byRule).toEqual([{ rule: 'key-1', count: 3 }]);
    expect(report.topKeys).toEqual([{ scope: 'api_key', key: apiKeyPrefix(hash), count: 3 }]);
    expect(report.recent).toHaveLength(1);
    expect(report.recent[0]).toMatchObject({
      count: 3,
      source: 'check_limit',
      rule: 'key-1',
      scope: 'api_key',
      key: apiKeyPrefix(hash),
      ip: '198.51.100.7',
      userId: 'filter-user',
      apiKeyPrefix: apiKeyPrefix(hash),
      path: '/v1/things',
      userAgent: 'curl/8',
      host: 'web-1',
      reason: '',
    });
    expect(report.recent[0]!.firstAt!.getTime()).toBeLessThanOrEqual(
      report.recent[0]!.lastAt!.getTime(),
    );
    const leaked = await db.query(
      `SELECT 1 FROM violations v WHERE v::text LIKE '%PATH-SECRET%' OR v::text LIKE '%?%'`,
    );
    expect(leaked.rows).toEqual([]);
    expect((await read({ userId: 'filter-user' })).total).toBe(3);
    expect((await read({ userId: 'someone-else' })).total).toBe(0);
    expect((await read({ ip: '198.51.100.8' })).total).toBe(0);
    // The burst's rows: limit bounds the recent entries, not the totals.
    const limited = await read({ rule: 'burst-1', limit: 5 });
    expect(limited.recent).toHaveLength(5);
    expect(limited.total).toBe(10_000);
    const times = limited.recent.map((v) => v.lastAt!.getTime());
    expect([...times].sort((x, y) => y - x)).toEqual(times);
  });

  it('keeps the denials of a flush the database refuses, and writes them once it accepts', async () => {
    c ??= await startTestServer(db.url, ENV);
    // The probe that sees the rule applied is admitted: locked-user's one call of the minute.
    await upsertEverywhere(
      [c.client],
      minuteRule({ name: 'locked-1', match: 'locked-user' }),
      () => ({
        userId: 'locked-user',
      }),
    );
    const failuresBefore = c.app.jobs().find((j) => j.name === 'violations-flush')!.failures;
    const locker = await sqlSession(db.url);
    try {
      // SHARE mode: reads go on, inserts wait, and the flush's lock_timeout ends the wait.
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE violations IN SHARE MODE');
      const seen = await checkMany([c.client], 50, 8, () => ({ userId: 'locked-user' }));
      expect(seen).toMatchObject({ allowed: 0, denied: 50, errors: 0 });
      await waitFor(
        () =>
          c.app.jobs().find((j) => j.name === 'violations-flush')!.failures > failuresBefore + 1,
        20_000,
      );
      const during = await db.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM violations WHERE rule = 'locked-1'`,
      );
      expect(Number(during.rows[0]!.n)).toBe(0);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    const total = async () =>
      Number(
        (
          await db.query<{ n: string | null }>(
            `SELECT sum(count)::text AS n FROM violations WHERE rule = 'locked-1'`,
          )
        ).rows[0]!.n ?? 0,
      );
    await waitFor(async () => (await total()) === 50, 20_000);
    await c.stop();
    c = undefined as unknown as TestServer;
    expect(await total()).toBe(50);
  });
});
