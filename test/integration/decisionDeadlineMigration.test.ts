import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { migrate, migrationsDir } from '../../src/store/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';

const MIGRATION = '1732200000003_decision-deadline';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
});

afterAll(async () => {
  await db?.drop();
});

/** Every quota_decide there is: its arguments and its whole definition. */
async function quotaDecide(): Promise<{ args: string; def: string }[]> {
  const r = await db.query<{ args: string; def: string }>(
    `SELECT pg_get_function_arguments(oid) AS args, pg_get_functiondef(oid) AS def
       FROM pg_proc WHERE proname = 'quota_decide'`,
  );
  return r.rows;
}

describe(`migration ${MIGRATION}`, () => {
  it('replaces quota_decide with the deadline version, and its down restores the previous one', async () => {
    const files = (await readdir(migrationsDir())).map((f) => f.replace(/\.sql$/, '')).sort();
    const before = files.filter((f) => f < MIGRATION).length;
    expect(await migrate(db.url, silentLogger(), 'up', before)).toHaveLength(before);
    const previous = await quotaDecide();
    expect(previous).toHaveLength(1);
    expect(previous[0]!.args).toContain('p_lock_timeout_ms integer');

    expect(await migrate(db.url, silentLogger(), 'up', 1)).toEqual([MIGRATION]);
    const current = await quotaDecide();
    expect(current).toHaveLength(1);
    expect(current[0]!.args).toMatch(
      /p_tz text, p_budget_ms integer, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone$/,
    );

    expect(await migrate(db.url, silentLogger(), 'down', 1)).toEqual([MIGRATION]);
    expect(await quotaDecide()).toEqual(previous);
  });
});
