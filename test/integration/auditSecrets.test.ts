import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Scope, type QuotaConnection } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { apiKeyPrefix } from '../../src/audit/apiKeyPrefix.js';
import type { App } from '../../src/app/App.js';
import { startApp } from '../../src/app/startApp.js';
import { loadConfig } from '../../src/config.js';
import { storedApiKey } from '../support/apiKeys.js';
import { minuteRule } from '../support/auditCalls.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';

// No raw API key at rest or in the log: a server logging everything (trace) decides, audits,
// flags and blocks calls carrying an API key; then every table and every log line is searched.

const RAW = 'sk-live-RAW-API-KEY-7f3a9c1e5d';
let db: TestDatabase;
let app: App | undefined;
let client: QuotaConnection;
const log: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: db.url,
    QUOTA_HOST: '127.0.0.1',
    QUOTA_PORT: '0',
    QUOTA_METRICS_PORT: '0',
    QUOTA_AUTH: 'disabled',
    QUOTA_DB_TIMEOUT_MS: '5000',
    QUOTA_LOAD_INTERVAL_MS: '600000',
    QUOTA_ATTACK_DENIALS: '2',
    QUOTA_ATTACK_IDENTITIES: '3',
    QUOTA_BLOCK_S: '600',
  });
  // Everything the server logs, at the most detailed level.
  const logger = pino({ level: 'trace' }, { write: (line: string) => void log.push(line) });
  app = await startApp(config, logger);
  client = connect({ address: `127.0.0.1:${app.port}` });
});

afterAll(async () => {
  client?.close();
  await app?.stop(1000);
  await db?.drop();
});

const check = (r: Partial<CheckLimitRequest>) =>
  client.quota.checkLimit(CheckLimitRequest.fromPartial(r)).catch((err: unknown) => err);

describe('an API key', () => {
  it('is nowhere at rest nor in the log: violations, sightings and flags keep a hash prefix', async () => {
    // A rule naming the key itself, and one for every key.
    await client.admin.upsertRateLimitRule({
      rule: minuteRule({ name: 'sec-exact', scope: Scope.SCOPE_API_KEY, match: RAW, limit: 2 }),
    });
    await client.admin.upsertRateLimitRule({
      rule: minuteRule({ name: 'sec-any', scope: Scope.SCOPE_API_KEY, limit: 100 }),
    });
    await waitFor(async () => {
      const a = await client.quota.checkLimit(CheckLimitRequest.fromPartial({ apiKey: RAW }));
      return a.limits.some((l) => l.rule === 'sec-exact');
    });
    // Denied again and again from one address, presenting several users and the key.
    for (let i = 0; i < 8; i++)
      await check({ apiKey: RAW, ip: '192.0.2.50', userId: `sec-user-${i}`, path: '/x' });
    // Bad requests carrying the key too: refused, and what is logged of them must not hold it.
    await check({ apiKey: RAW, ip: 'not-an-ip' });
    await check({ apiKey: RAW, userId: 'u\u0000' });
    await check({ apiKey: RAW, hits: 2 ** 40 });

    const hash = await storedApiKey(db, RAW);
    const prefix = apiKeyPrefix(hash);
    await waitFor(async () => {
      const flags = await db.query(
        `SELECT 1 FROM attack_flags WHERE scope = 'api_key' AND key = $1 AND blocked_until IS NOT NULL`,
        [prefix],
      );
      return flags.rows.length > 0;
    }, 30_000);
    await waitFor(async () => {
      const answer = await client.quota.checkLimit(CheckLimitRequest.fromPartial({ apiKey: RAW }));
      return answer.limits[0]?.rule === 'attack-block';
    }, 30_000);

    client.close();
    await app!.stop(1000);
    app = undefined;

    // The audit holds the prefix: the search below looks where the key would be.
    const held = await db.query<{ v: string; s: string; f: string }>(
      `SELECT (SELECT count(*) FROM violations WHERE api_key_prefix = $1 AND key = $1)::text AS v,
              (SELECT count(*) FROM identity_sightings WHERE identity = 'api_key:' || $1)::text AS s,
              (SELECT count(*) FROM attack_flags WHERE key = $1)::text AS f`,
      [prefix],
    );
    expect(held.rows[0]).toEqual({ v: expect.not.stringMatching(/^0$/), s: '1', f: '1' });

    const tables = (
      await db.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
      )
    ).rows.map((r) => r.name);
    expect(tables).toEqual(
      expect.arrayContaining(['violations', 'identity_sightings', 'attack_flags']),
    );
    const found: string[] = [];
    for (const t of tables) {
      // A row as text holds every column of it.
      const rows = await db.query(`SELECT 1 FROM "${t}" r WHERE strpos(r::text, $1) > 0`, [RAW]);
      if (rows.rows.length > 0) found.push(t);
      // The audit keeps less than the keyed hash the counters hold: only its prefix.
      if (['violations', 'identity_sightings', 'attack_flags'].includes(t)) {
        const full = await db.query(`SELECT 1 FROM "${t}" r WHERE strpos(r::text, $1) > 0`, [hash]);
        if (full.rows.length > 0) found.push(`${t} (full hash)`);
      }
    }
    expect(found).toEqual([]);

    expect(log.length).toBeGreaterThan(10);
    expect(log.some((l) => l.includes('CheckLimit'))).toBe(true);
    expect(log.filter((l) => l.includes(RAW))).toEqual([]);
    expect(log.filter((l) => l.includes(hash))).toEqual([]);
  });
});
