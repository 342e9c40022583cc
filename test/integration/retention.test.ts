import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgRetentionStore } from '../../src/store/PgRetentionStore.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';

// Retention against a real server and PostgreSQL: rows just past each table's retention are
// deleted and rows just inside it are kept, by the database clock, with the configured days
// and with a call's own, and in days of 24 hours across a daylight-saving change; a block in
// force keeps its flag; large backlogs go in batches.

let db: TestDatabase;
let server: TestServer;

/** The configured retention of the server under test, in days (the defaults). */
const CONFIGURED = { executions: 30, violations: 30, loadHistory: 7, rollups: 90 };
/** Silent hosts and the ids of written audit batches are forgotten after a day, always. */
const HOST_DAYS = 1;
const AUDIT_BATCH_DAYS = 1;

/** SQL for `days` of 24 hours ago by the database clock, `minutes` later (negative: earlier). */
const ago = (days: number, minutes: number) =>
  `now() - make_interval(hours => 24 * ${days}) + make_interval(mins => ${minutes})`;
/** Start of the UTC hour containing `t`. */
const hourOf = (t: string) => `(date_trunc('hour', (${t}) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;

/**
 * Per table, an insert of one row tagged `tag` (in a text column the table has) at time `at`.
 * `blockedUntil` only for attack flags.
 */
const INSERT: Record<string, (tag: string, at: string, blockedUntil?: string) => string> = {
  command_executions: (tag, at) =>
    `INSERT INTO command_executions (id, user_id, command_type, started_at, duration_ms,
       cpu_percent, memory_bytes, exit_code, status, recorded_at)
     VALUES (gen_random_uuid(), '${tag}', 'shell', ${at}, 1, 1, 1, 0, 'completed', ${at})`,
  violations: (tag, at) =>
    `INSERT INTO violations (first_at, last_at, count, source, rule, scope, key)
     VALUES (${at}, ${at}, 3, 'check_limit', 'r', 'user', '${tag}')`,
  attack_flags: (tag, at, blockedUntil = 'NULL') =>
    `INSERT INTO attack_flags (kind, scope, key, count, first_seen, last_seen, blocked_until)
     VALUES ('repeated_denials', 'user', '${tag}', 99, ${at}, ${at}, ${blockedUntil})`,
  load_history: (tag, at) =>
    `INSERT INTO load_history (host, at, samples, cpu_percent, cpu_max, memory_percent,
       memory_max, disk_percent, disk_max, load_avg_1m, load_avg_1m_max, throttle_factor)
     VALUES ('${tag}', ${at}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)`,
  throttle_events: (tag, at) =>
    `INSERT INTO throttle_events (host, at, previous_factor, factor, cpu_percent, memory_percent)
     VALUES ('${tag}', ${at}, 1, 0.8, 75, 10)`,
  host_load: (tag, at) =>
    `INSERT INTO host_load (host, at, cpu_percent, memory_percent, disk_percent,
       disk_read_bytes_per_sec, disk_write_bytes_per_sec, net_rx_bytes_per_sec,
       net_tx_bytes_per_sec, load_avg_1m, throttle_factor, updated_at)
     VALUES ('${tag}', ${at}, 1, 1, 1, 0, 0, 0, 0, 0, 1, ${at})`,
  decision_stats: (tag, at) =>
    `INSERT INTO decision_stats (hour, kind, name, allowed, denied)
     VALUES (${at}, 'rule', '${tag}', 5, 1)`,
  load_hourly: (tag, at) =>
    `INSERT INTO load_hourly (host, hour, samples, cpu_avg, cpu_max, memory_avg, memory_max,
       disk_avg, disk_max, load_avg_1m_avg, load_avg_1m_max)
     VALUES ('${tag}', ${at}, 60, 1, 1, 1, 1, 1, 1, 1, 1)`,
  // No text column: the tag names the batch's id in batchIds.
  audit_batches: (tag, at) => {
    const id = randomUUID();
    batchIds.set(tag, id);
    return `INSERT INTO audit_batches (id, written_at) VALUES ('${id}', ${at})`;
  },
};

/** The id of each audit batch row seeded, by its tag. */
const batchIds = new Map<string, string>();

/** Every tagged row left, as "table tag", sorted. */
async function tagged(prefix: string): Promise<string[]> {
  const column: Record<string, string> = {
    command_executions: 'user_id',
    violations: 'key',
    attack_flags: 'key',
    load_history: 'host',
    throttle_events: 'host',
    host_load: 'host',
    decision_stats: 'name',
    load_hourly: 'host',
  };
  const sql = Object.entries(column)
    .map(([t, c]) => `SELECT '${t} ' || ${c} AS row FROM ${t} WHERE ${c} LIKE '${prefix}%'`)
    .join(' UNION ALL ');
  const batches = [...batchIds].filter(([tag]) => tag.startsWith(prefix));
  const left = await db.query<{ id: string }>(
    'SELECT id::text FROM audit_batches WHERE id = ANY ($1::uuid[])',
    [batches.map(([, id]) => id)],
  );
  const ids = new Set(left.rows.map((r) => r.id));
  return [
    ...(await db.query<{ row: string }>(sql)).rows.map((r) => r.row),
    ...batches.filter(([, id]) => ids.has(id)).map(([tag]) => `audit_batches ${tag}`),
  ].sort();
}

/**
 * Rows just past and just inside retention (`days` of each kind), tagged `<prefix>:in` and
 * `<prefix>:out`: a minute either side of the bound; for hourly tables, the hour that began
 * before the bound and the hour after the one containing it. Attack flags also: one past
 * retention whose block is in force (kept) and one whose block is over (deleted).
 */
async function seed(prefix: string, days: typeof CONFIGURED): Promise<void> {
  const kindOf: Record<string, number> = {
    command_executions: days.executions,
    violations: days.violations,
    attack_flags: days.violations,
    load_history: days.loadHistory,
    throttle_events: days.loadHistory,
    host_load: HOST_DAYS,
    decision_stats: days.rollups,
    load_hourly: days.rollups,
    audit_batches: AUDIT_BATCH_DAYS,
  };
  for (const [table, d] of Object.entries(kindOf)) {
    const insert = INSERT[table]!;
    const hourly = table === 'decision_stats' || table === 'load_hourly';
    const out = hourly ? hourOf(ago(d, -1)) : ago(d, -1);
    const inside = hourly ? `${hourOf(ago(d, 0))} + interval '1 hour'` : ago(d, 1);
    await db.query(insert(`${prefix}:out`, out));
    await db.query(insert(`${prefix}:in`, inside));
  }
  const flag = INSERT.attack_flags!;
  await db.query(
    flag(`${prefix}:out-blocked`, ago(days.violations, -1), `now() + interval '1 hour'`),
  );
  await db.query(flag(`${prefix}:out-unblocked`, ago(days.violations, -1), ago(0, -1)));
}

/** What seed() keeps, by the rules above. */
const kept = (prefix: string) =>
  [
    ...Object.keys(INSERT).map((t) => `${t} ${prefix}:in`),
    `attack_flags ${prefix}:out-blocked`,
  ].sort();

/** What seed() leaves for deletion, per table. */
const SEEDED_PAST = {
  attack_flags: 2,
  audit_batches: 1,
  command_executions: 1,
  decision_stats: 1,
  host_load: 1,
  load_history: 1,
  load_hourly: 1,
  throttle_events: 1,
  violations: 1,
};

const deletedOf = (r: { deleted: { table: string; rows: number }[] }) =>
  Object.fromEntries(r.deleted.map((d) => [d.table, d.rows]));

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, {
    QUOTA_DB_TIMEOUT_MS: '5000',
    QUOTA_LOAD_INTERVAL_MS: '600000',
  });
  // The violations flush forgets old audit batch ids too, at its first run and hourly after:
  // past its first run, the batch ids seeded here are the cleanup's alone.
  await waitFor(() => server.app.jobs().some((j) => j.name === 'violations-flush' && j.runs > 0));
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('CleanupOldData', () => {
  it('deletes exactly the rows past the configured retention of each table, and only once', async () => {
    await seed('p1', CONFIGURED);
    expect(await tagged('p1')).toHaveLength(2 * Object.keys(INSERT).length + 2);
    const first = await server.client.admin.cleanupOldData({
      executionsDays: 0,
      violationsDays: 0,
      loadHistoryDays: 0,
      rollupsDays: 0,
    });
    // One entry per table, by name, with exactly the rows seeded past retention.
    expect(first.deleted.map((d) => d.table)).toEqual(Object.keys(SEEDED_PAST));
    expect(deletedOf(first)).toEqual(SEEDED_PAST);
    expect(await tagged('p1')).toEqual(kept('p1'));

    const again = await server.client.admin.cleanupOldData({
      executionsDays: 0,
      violationsDays: 0,
      loadHistoryDays: 0,
      rollupsDays: 0,
    });
    expect(Object.values(deletedOf(again))).toEqual(Object.values(SEEDED_PAST).map(() => 0));
    expect(await tagged('p1')).toEqual(kept('p1'));
  });

  it("deletes by each kind's own days when the call gives them", async () => {
    // Distinct days per kind: a day count applied to another kind's tables would delete the
    // wrong rows (its rows sit a minute either side of their own kind's bound).
    const days = { executions: 10, violations: 11, loadHistory: 3, rollups: 12 };
    await seed('p2', days);
    const result = await server.client.admin.cleanupOldData({
      executionsDays: days.executions,
      violationsDays: days.violations,
      loadHistoryDays: days.loadHistory,
      rollupsDays: days.rollups,
    });
    // What p1 kept is older than these shorter retentions and goes too, each counted once in
    // its table: all but its blocked flag, its host and its batch id (their day is fixed).
    expect(deletedOf(result)).toEqual({
      attack_flags: 3,
      audit_batches: 1,
      command_executions: 2,
      decision_stats: 2,
      host_load: 1,
      load_history: 2,
      load_hourly: 2,
      throttle_events: 2,
      violations: 2,
    });
    expect(await tagged('p2')).toEqual(kept('p2'));
    expect(await tagged('p1')).toEqual([
      'attack_flags p1:out-blocked',
      'audit_batches p1:in',
      'host_load p1:in',
    ]);
  });

  it('keeps an attack flag while its block is in force, and deletes it once the block is over', async () => {
    await db.query(`UPDATE attack_flags SET blocked_until = now() - interval '1 second'
                     WHERE key IN ('p1:out-blocked', 'p2:out-blocked')`);
    const result = await server.client.admin.cleanupOldData({
      executionsDays: 0,
      violationsDays: 0,
      loadHistoryDays: 0,
      rollupsDays: 0,
    });
    // p2's flag is 11 days old: inside the configured 30 days, so it stays.
    expect(deletedOf(result)).toMatchObject({ attack_flags: 1 });
    expect(await tagged('p1')).toEqual(['audit_batches p1:in', 'host_load p1:in']);
    expect(await tagged('p2:out-blocked')).toEqual(['attack_flags p2:out-blocked']);
  });
});

describe('the retention store', () => {
  it('deletes a backlog larger than a batch over several batches, at most its bound per run', async () => {
    const database = new Database({
      url: db.url,
      timeoutMs: 5000,
      poolSize: 2,
      logger: silentLogger(),
    });
    try {
      await db.query(
        `INSERT INTO violations (first_at, last_at, count, source, rule, scope, key)
         SELECT t, t, 1, 'check_limit', 'r', 'user', 'backlog:' || i
           FROM generate_series(1, 10) i, LATERAL (SELECT now() - interval '40 days' AS t) x`,
      );
      // Three rows a statement, two statements a run: six now, the other four on the next run.
      const store = new PgRetentionStore(database, 3, 2);
      expect(await store.deleteOld(CONFIGURED)).toMatchObject({ violations: 6 });
      expect(await tagged('backlog:')).toHaveLength(4);
      expect(await store.deleteOld(CONFIGURED)).toMatchObject({ violations: 4 });
      expect(await tagged('backlog:')).toEqual([]);
    } finally {
      await database.close();
    }
  });
});

describe('retention across a daylight-saving change', () => {
  it('counts a day as 24 hours in a session whose time zone changes its clocks', async () => {
    const url = new URL(db.url);
    url.searchParams.set('options', '-c TimeZone=Europe/Berlin');
    const berlin = new Database({
      url: url.toString(),
      timeoutMs: 5000,
      poolSize: 2,
      logger: silentLogger(),
    });
    try {
      expect(
        (await berlin.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz")).rows[0]!
          .tz,
      ).toBe('Europe/Berlin');
      // The fewest days back from now that cross Berlin's last clock change (at most a year
      // ago): `now() - k days` counted in its calendar is an hour off k times 24 hours there.
      const crossing = await berlin.query<{ k: number; off: number }>(
        `SELECT k, extract(epoch FROM (now() - make_interval(days => k))
                                    - (now() - make_interval(hours => 24 * k)))::int AS off
           FROM generate_series(1, 366) k
          WHERE now() - make_interval(days => k) <> now() - make_interval(hours => 24 * k)
          ORDER BY k LIMIT 1`,
      );
      const { k, off } = crossing.rows[0]!;
      expect(Math.abs(off)).toBe(3600);
      const days = { executions: k, violations: k, loadHistory: k, rollups: k };
      await seed('dst', days);
      await new PgRetentionStore(berlin).deleteOld(days);
      // A minute either side of k times 24 hours ago: kept inside, deleted past it.
      expect(await tagged('dst')).toEqual(kept('dst'));
    } finally {
      await berlin.close();
    }
  });
});
