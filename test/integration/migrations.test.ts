import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { migrate } from '../../src/store/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
});

afterAll(async () => {
  await db?.drop();
});

async function tables(): Promise<string[]> {
  const r = await db.query<{ t: string }>(
    `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'pgmigrations' ORDER BY 1`,
  );
  return r.rows.map((x) => x.t);
}

describe('migrations', () => {
  it('apply up, revert down to nothing, and apply again', async () => {
    const up = await migrate(db.url, silentLogger());
    expect(up.length).toBeGreaterThanOrEqual(2);
    expect(await tables()).toEqual(
      expect.arrayContaining(['idempotency_keys', 'rate_limit_counters', 'rate_limit_rules']),
    );
    const down = await migrate(db.url, silentLogger(), 'down', Infinity);
    expect(down).toEqual([...up].reverse());
    expect(await tables()).toEqual([]);
    const fns = await db.query(`SELECT 1 FROM pg_proc WHERE proname LIKE 'quota_%'`);
    expect(fns.rowCount).toBe(0);
    expect(await migrate(db.url, silentLogger())).toEqual(up);
    expect(await migrate(db.url, silentLogger())).toEqual([]);
  });
});
