import { Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  connect,
  QuotaCallError,
  RateLimitRule,
  Scope,
  type QuotaConnection,
} from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import type { App } from '../../src/app/App.js';
import { startApp } from '../../src/app/startApp.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { migrate } from '../../src/store/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

const req = (r: Partial<CheckLimitRequest>) => CheckLimitRequest.fromPartial(r);
const rule = (r: Partial<RateLimitRule>) =>
  RateLimitRule.fromPartial({ match: '*', window: { seconds: 60, nanos: 0 }, ...r });

/** Raw API keys no table and no log line may hold. */
const RAW_KEY = 'ak_live_RAW-KEY-7f3a9c';
const VIP_KEY = 'ak_live_VIP-KEY-51d2e8';

let db: TestDatabase;
let server: TestServer;

async function upsert(client: QuotaConnection, r: Partial<RateLimitRule>) {
  return (await client.admin.upsertRateLimitRule({ rule: rule(r) })).rule!;
}

async function clearRules(client: QuotaConnection) {
  for (const r of (await client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED })).rules)
    await client.admin.deleteRateLimitRule({ name: r.name });
}

/** `table.column` of every text-like value in the public schema that contains `needle`. */
async function whereStored(needle: string): Promise<string[]> {
  const columns = await db.query<{ table_name: string; column_name: string }>(
    `SELECT c.table_name, c.column_name FROM information_schema.columns c
       JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
        AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'ARRAY')`,
  );
  expect(columns.rows.map((c) => `${c.table_name}.${c.column_name}`)).toEqual(
    expect.arrayContaining(['rate_limit_counters.key', 'idempotency_keys.response']),
  );
  const found: string[] = [];
  for (const { table_name: t, column_name: c } of columns.rows) {
    const hit = await db.query(
      `SELECT 1 FROM public.${JSON.stringify(t)} WHERE ${JSON.stringify(c)}::text LIKE $1 LIMIT 1`,
      [`%${needle}%`],
    );
    if (hit.rowCount) found.push(`${t}.${c}`);
  }
  return found;
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
  await clearRules(server.client);
});

describe('IP keys', () => {
  it('counts 192.0.2.77, ::ffff:192.0.2.77 and 192.000.002.077 on one counter', async () => {
    await upsert(server.client, { name: 'ip-2', scope: Scope.SCOPE_IP, limit: 2 });
    const answers = [];
    for (const ip of ['192.0.2.77', '::ffff:192.0.2.77', '192.000.002.077'])
      answers.push(await server.client.quota.checkLimit(req({ ip })));
    expect(answers.map((a) => a.allowed)).toEqual([true, true, false]);
    expect(answers.map((a) => a.limits[0]!.key)).toEqual(Array(3).fill('192.0.2.77'));
    const keys = await db.query<{ key: string }>(
      `SELECT key FROM rate_limit_counters WHERE rule = 'ip-2'`,
    );
    expect(keys.rows).toEqual([{ key: '192.0.2.77' }]);
  });

  it('counts two IPv6 addresses of one /64 on one counter, and another /64 apart', async () => {
    await upsert(server.client, { name: 'ip6-2', scope: Scope.SCOPE_IP, limit: 2 });
    const a = await server.client.quota.checkLimit(req({ ip: '2001:db8:aa:1::1' }));
    const b = await server.client.quota.checkLimit(req({ ip: '2001:DB8:AA:1:ffff:0:0:9' }));
    const c = await server.client.quota.checkLimit(req({ ip: '2001:db8:aa:1::2' }));
    const other = await server.client.quota.checkLimit(req({ ip: '2001:db8:aa:2::1' }));
    expect([a, b, c, other].map((x) => x.allowed)).toEqual([true, true, false, true]);
    expect(a.limits[0]!.key).toBe('2001:db8:aa:1::/64');
    expect(other.limits[0]!.key).toBe('2001:db8:aa:2::/64');
  });

  it('applies an exact IP rule to every spelling of its address', async () => {
    const stored = await upsert(server.client, {
      name: 'ip-exact',
      scope: Scope.SCOPE_IP,
      match: '::ffff:198.51.100.7',
      limit: 1,
    });
    expect(stored.match).toBe('198.51.100.7');
    const a = await server.client.quota.checkLimit(req({ ip: '198.051.100.007' }));
    const b = await server.client.quota.checkLimit(req({ ip: '198.51.100.7' }));
    expect([a.allowed, b.allowed]).toEqual([true, false]);
    expect(b.limits.map((l) => l.rule)).toEqual(['ip-exact']);
  });

  it('answers INVALID_ARGUMENT naming ip for what is not an address, and writes nothing', async () => {
    await upsert(server.client, { name: 'ip-any', scope: Scope.SCOPE_IP, limit: 5 });
    for (const ip of ['not-an-ip', '0xc0.0.2.77', '3221226061', '192.0.2', '1.2.3.256']) {
      const err = await server.client.quota.checkLimit(req({ ip, userId: 'u' })).catch((e) => e);
      expect(err).toBeInstanceOf(QuotaCallError);
      expect((err as QuotaCallError).code).toBe(status.INVALID_ARGUMENT);
      expect((err as QuotaCallError).details).toMatch(/^ip:/);
    }
    const err = await upsert(server.client, {
      name: 'ip-word',
      scope: Scope.SCOPE_IP,
      match: 'office',
      limit: 1,
    }).catch((e: unknown) => e);
    expect((err as QuotaCallError).code).toBe(status.INVALID_ARGUMENT);
    expect((err as QuotaCallError).details).toContain('rule.match');
    const n = await db.query(`SELECT 1 FROM rate_limit_counters WHERE rule = 'ip-any'`);
    expect(n.rowCount).toBe(0);
  });
});

describe('API keys at rest', () => {
  it('are in no table and no log line, while answers show the key sent', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const config = loadConfig({
      DATABASE_URL: db.url,
      QUOTA_HOST: '127.0.0.1',
      QUOTA_PORT: '0',
      QUOTA_METRICS_PORT: '0',
      LOG_LEVEL: 'debug',
      // Tokens are another test's matter: this one looks for API keys.
      QUOTA_AUTH: 'disabled',
    });
    const app: App = await startApp(config, logger);
    const client = connect({ address: `127.0.0.1:${app.port}` });
    try {
      await upsert(client, { name: 'key-3', scope: Scope.SCOPE_API_KEY, limit: 3 });
      const vip = await upsert(client, {
        name: 'key-vip',
        scope: Scope.SCOPE_API_KEY,
        match: VIP_KEY,
        limit: 1,
      });
      // Listing shows the hash, never the key.
      expect(vip.match).toMatch(/^hmac-sha256:[\w-]{8}:[\w-]{43}$/);
      const listed = await client.admin.listRateLimitRules({ scope: Scope.SCOPE_API_KEY });
      expect(JSON.stringify(listed)).not.toContain(VIP_KEY);

      const first = await client.quota.checkLimit(
        req({ apiKey: RAW_KEY, ip: '203.0.113.5', requestId: 'req-1' }),
      );
      const retry = await client.quota.checkLimit(
        req({ apiKey: RAW_KEY, ip: '203.0.113.5', requestId: 'req-1' }),
      );
      expect(retry).toEqual(first);
      expect(first.limits).toEqual([expect.objectContaining({ rule: 'key-3', key: RAW_KEY })]);
      await client.quota.checkLimit(req({ apiKey: RAW_KEY, requestId: 'req-2' }));
      const third = await client.quota.checkLimit(req({ apiKey: RAW_KEY }));
      const fourth = await client.quota.checkLimit(req({ apiKey: RAW_KEY, requestId: 'req-4' }));
      expect([first, third, fourth].map((a) => a.allowed)).toEqual([true, true, false]);
      expect(fourth.limits[0]!.key).toBe(RAW_KEY);

      // The exact-match rule applies by the hash.
      const v1 = await client.quota.checkLimit(req({ apiKey: VIP_KEY, requestId: 'vip-1' }));
      const v2 = await client.quota.checkLimit(req({ apiKey: VIP_KEY, requestId: 'vip-2' }));
      expect([v1.allowed, v2.allowed]).toEqual([true, false]);
      expect(v2.limits).toEqual([
        expect.objectContaining({ rule: 'key-vip', key: VIP_KEY, exceeded: true }),
      ]);

      const stored = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM idempotency_keys WHERE key LIKE 'check_limit:%'`,
      );
      expect(Number(stored.rows[0]!.n)).toBeGreaterThanOrEqual(4);
      const counters = await db.query<{ key: string }>(
        `SELECT key FROM rate_limit_counters WHERE rule IN ('key-3', 'key-vip')`,
      );
      expect(counters.rows.map((r) => r.key)).toEqual([
        expect.stringMatching(/^hmac-sha256:/),
        expect.stringMatching(/^hmac-sha256:/),
      ]);
      for (const key of [RAW_KEY, VIP_KEY]) {
        expect(await whereStored(key)).toEqual([]);
        // Nor a part of it long enough to name it.
        expect(await whereStored(key.slice(8))).toEqual([]);
      }
    } finally {
      client.close();
      await app.stop(1000);
    }
    expect(lines.length).toBeGreaterThan(5);
    const log = lines.join('');
    expect(log).toContain('"method":"CheckLimit"');
    for (const key of [RAW_KEY, VIP_KEY]) expect(log).not.toContain(key.slice(8));
  });

  it('share counters between replicas through the secret generated in the database', async () => {
    const secrets = await db.query<{ name: string; n: number }>(
      'SELECT name, octet_length(value) AS n FROM service_secrets',
    );
    expect(secrets.rows).toEqual([{ name: 'api_key_hmac', n: 32 }]);
    await upsert(server.client, { name: 'key-2', scope: Scope.SCOPE_API_KEY, limit: 2 });
    // Started after the rule was written: it loads the rule at start.
    const replica = await startTestServer(db.url);
    try {
      const allowed = [];
      for (const client of [server.client, replica.client, server.client])
        allowed.push((await client.quota.checkLimit(req({ apiKey: 'shared-key' }))).allowed);
      expect(allowed).toEqual([true, true, false]);
    } finally {
      await replica.stop();
    }
  });

  it('start afresh under another secret, which QUOTA_API_KEY_SECRET sets', async () => {
    await upsert(server.client, { name: 'key-1', scope: Scope.SCOPE_API_KEY, limit: 1 });
    const listed = await upsert(server.client, {
      name: 'key-exact',
      scope: Scope.SCOPE_API_KEY,
      match: 'exact-key',
      limit: 1,
    });
    const check = (client: QuotaConnection) =>
      client.quota.checkLimit(req({ apiKey: 'moving-key' })).then((a) => a.allowed);
    expect(await check(server.client)).toBe(true);
    const other = await startTestServer(db.url, { QUOTA_API_KEY_SECRET: 'x'.repeat(32) });
    try {
      expect(await check(other.client)).toBe(true);
      expect(await check(server.client)).toBe(false);
      // A hash made under another secret could match no call here: refused, not stored.
      const err = await upsert(other.client, { ...listed, name: 'key-copied' }).catch(
        (e: unknown) => e,
      );
      expect((err as QuotaCallError).code).toBe(status.INVALID_ARGUMENT);
      expect((err as QuotaCallError).details).toContain('rule.match');
    } finally {
      await other.stop();
    }
  });
});

describe('upgrade from raw API keys', () => {
  it('the migration deletes raw-key counters and answers; the service hashes rule matches', async () => {
    const old = await createTestDatabase({ empty: true });
    try {
      const applied = await migrate(old.url, silentLogger(), 'up', 4);
      expect(applied.at(-1)).toBe('1732200000003_decision-deadline');
      await old.query('DELETE FROM rate_limit_rules');
      await old.query(
        `INSERT INTO rate_limit_rules (name, scope, match, limit_count, window_ms,
        algorithm) VALUES ('key-any', 'api_key', '*', 5, 60000, 'fixed_window'),
        ('key-vip', 'api_key', $1, 1, 60000, 'fixed_window'),
        ('ip-any', 'ip', '*', 5, 60000, 'fixed_window')`,
        [VIP_KEY],
      );
      await old.query(
        `INSERT INTO rate_limit_counters (rule, key) VALUES ('key-any', $1),
        ('key-vip', $2), ('ip-any', '10.0.0.1')`,
        [RAW_KEY, VIP_KEY],
      );
      await old.query(
        `INSERT INTO idempotency_keys (key, response, expires_at) VALUES
          ('check_limit:a:x', $1, now() + interval '1 day'),
          ('check_limit:b:x', $2, now() + interval '1 day')`,
        [
          JSON.stringify({ allowed: true, limits: [{ rule: 'key-any', key: RAW_KEY }] }),
          JSON.stringify({ allowed: true, limits: [{ rule: 'ip-any', key: '10.0.0.1' }] }),
        ],
      );
      await migrate(old.url, silentLogger());
      const counters = await old.query<{ rule: string }>('SELECT rule FROM rate_limit_counters');
      expect(counters.rows).toEqual([{ rule: 'ip-any' }]);
      const answers = await old.query<{ key: string }>('SELECT key FROM idempotency_keys');
      expect(answers.rows).toEqual([{ key: 'check_limit:b:x' }]);

      const started = await startTestServer(old.url);
      try {
        const vip = await old.query<{ match: string }>(
          `SELECT match FROM rate_limit_rules WHERE name = 'key-vip'`,
        );
        expect(vip.rows[0]!.match).toMatch(/^hmac-sha256:/);
        const a = await started.client.quota.checkLimit(req({ apiKey: VIP_KEY }));
        const b = await started.client.quota.checkLimit(req({ apiKey: VIP_KEY }));
        expect([a.allowed, b.allowed]).toEqual([true, false]);
        expect(b.limits.map((l) => [l.rule, l.key])).toEqual([['key-vip', VIP_KEY]]);
      } finally {
        await started.stop();
      }
    } finally {
      await old.drop();
    }
  });
});
