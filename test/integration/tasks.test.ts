import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CleanupOldDataRequest,
  ListTasksResponse,
  RunTaskRequest,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import type { QuotaCallError } from '@quota-authority/client';
import { expectRefused as refused } from '../support/expectRefused.js';
import { RawClient, encode } from '../support/rawClient.js';
import { rowCounter, settledCounts, type RowCounts } from '../support/rowCounts.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

// The task methods of AdminService through a real server: ListTasks, RunTask (the retention
// task and the hourly rollups, checked against figures computed by hand), and bad input to
// each of the three methods: INVALID_ARGUMENT naming the field, nothing run, nothing written.

const A = '/quota.v1.AdminService/';
const REPLICA = 'tasks-replica-1';

let db: TestDatabase;
let server: TestServer;
let raw: RawClient;
let counts: () => Promise<RowCounts>;

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => status.OK,
    (err: QuotaCallError) => err.code,
  );

/** The start of the UTC hour an hour before the current one, by the database clock. */
async function previousHour(): Promise<Date> {
  const r = await db.query<{ h: Date }>(
    `SELECT date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 hour' AS h`,
  );
  return r.rows[0]!.h;
}

interface Sample {
  host: string;
  /** Minutes after the hour given to insertHistory. */
  minute: number;
  samples: number;
  cpu: [number, number];
  memory: [number, number];
  disk: [number, number];
  load: [number, number];
}

/** Raw load history rows: each figure as [mean of the row's samples, their max]. */
async function insertHistory(hour: Date, rows: readonly Sample[]): Promise<void> {
  for (const r of rows) {
    await db.query(
      `INSERT INTO load_history (host, at, samples, cpu_percent, cpu_max, memory_percent,
         memory_max, disk_percent, disk_max, load_avg_1m, load_avg_1m_max, throttle_factor)
       VALUES ($1, $2::timestamptz + make_interval(mins => $3), $4, $5, $6, $7, $8, $9, $10,
               $11, $12, 1)`,
      [r.host, hour, r.minute, r.samples, ...r.cpu, ...r.memory, ...r.disk, ...r.load],
    );
  }
}

interface Hourly {
  host: string;
  hour: Date;
  samples: number;
  cpu_avg: number;
  cpu_max: number;
  memory_avg: number;
  memory_max: number;
  disk_avg: number;
  disk_max: number;
  load_avg_1m_avg: number;
  load_avg_1m_max: number;
}

async function hourly(): Promise<Hourly[]> {
  const r = await db.query<Hourly & { samples: string }>(
    `SELECT * FROM load_hourly WHERE host LIKE 'roll-%' ORDER BY host, hour`,
  );
  return r.rows.map((row) => ({ ...row, samples: Number(row.samples) }));
}

const HOUR_MS = 3_600_000;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, {
    QUOTA_HOST_NAME: REPLICA,
    QUOTA_DB_TIMEOUT_MS: '5000',
    // The replica samples its own load once, at start: later samples would add rows.
    QUOTA_LOAD_INTERVAL_MS: '600000',
  });
  raw = new RawClient(server.address, TEST_ADMIN_TOKEN);
  counts = await rowCounter(db);
  await settledCounts(counts);
});

afterAll(async () => {
  raw?.close();
  await server?.stop();
  await db?.drop();
});

describe('ListTasks', () => {
  it("lists this replica's tasks by name, with its host name", async () => {
    const answer = await server.client.admin.listTasks({});
    expect(answer.replica).toBe(REPLICA);
    const names = answer.tasks.map((t) => t.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(
      expect.arrayContaining(['expired-state-cleanup', 'hourly-rollups', 'retention-cleanup']),
    );
    const retention = answer.tasks.find((t) => t.name === 'retention-cleanup')!;
    expect(retention).toMatchObject({
      interval: { seconds: 3600, nanos: 0 },
      clusterWide: true,
      runs: 0,
      failures: 0,
      consecutiveFailures: 0,
      skipped: 0,
      lastRunAt: undefined,
      lastError: '',
      running: false,
    });
    // Scheduled an interval after the start.
    expect(retention.nextRunAt!.getTime()).toBeGreaterThan(Date.now() + HOUR_MS - 120_000);
  });
});

describe('RunTask', () => {
  it('runs the retention task now and answers its status after the run', async () => {
    await db.query(
      `INSERT INTO command_executions (id, user_id, command_type, started_at, duration_ms,
         cpu_percent, memory_bytes, exit_code, status, recorded_at)
       SELECT gen_random_uuid(), 'run-task:' || d, 'shell', t, 1, 1, 1, 0, 'completed', t
         FROM unnest(ARRAY[29, 31]) d, LATERAL (SELECT now() - make_interval(days => d) AS t) x`,
    );
    const answer = await server.client.admin.runTask({ name: 'retention-cleanup' });
    expect(answer.ran).toBe(true);
    expect(answer.task).toMatchObject({
      name: 'retention-cleanup',
      runs: 1,
      failures: 0,
      consecutiveFailures: 0,
      lastError: '',
      running: false,
    });
    expect(answer.task!.lastRunAt).toBeInstanceOf(Date);
    expect(answer.task!.lastDuration).toBeDefined();
    // The next run is an interval after this one.
    expect(answer.task!.nextRunAt!.getTime()).toBeGreaterThan(Date.now() + HOUR_MS - 60_000);
    const left = await db.query<{ user_id: string }>(
      `SELECT user_id FROM command_executions WHERE user_id LIKE 'run-task:%'`,
    );
    expect(left.rows.map((r) => r.user_id)).toEqual(['run-task:29']);
    const listed = await server.client.admin.listTasks({});
    expect(listed.tasks.find((t) => t.name === 'retention-cleanup')).toMatchObject({ runs: 1 });
  });

  it('answers NOT_FOUND for a task this replica does not have', async () => {
    expect(await codeOf(server.client.admin.runTask({ name: 'load-retention' }))).toBe(
      status.NOT_FOUND,
    );
  });

  it('rolls load history up per host and UTC hour, weighted by samples, and again idempotently', async () => {
    const h = await previousHour();
    const next = new Date(h.getTime() + HOUR_MS);
    const old = new Date(h.getTime() - 30 * HOUR_MS);
    await insertHistory(h, [
      // roll-a, hour h: three rows of 1, 3 and 2 samples.
      {
        host: 'roll-a',
        minute: 5,
        samples: 1,
        cpu: [10, 15],
        memory: [40, 41],
        disk: [70, 70],
        load: [0.5, 0.7],
      },
      {
        host: 'roll-a',
        minute: 20,
        samples: 3,
        cpu: [20, 25],
        memory: [50, 60],
        disk: [70, 71],
        load: [1.5, 2],
      },
      // A subnormal figure counts as 0 in a mean (dividing it by a sample count would underflow).
      {
        host: 'roll-a',
        minute: 59,
        samples: 2,
        cpu: [50, 70],
        memory: [5e-324, 5e-324],
        disk: [72, 72],
        load: [0, 0],
      },
      // The next hour begins at minute 60.
      {
        host: 'roll-a',
        minute: 60,
        samples: 4,
        cpu: [90, 95],
        memory: [1, 1],
        disk: [1, 1],
        load: [1, 1],
      },
      // roll-b: 5e-324 over 3 samples would be 1.6e-324, which float8 cannot hold.
      {
        host: 'roll-b',
        minute: 30,
        samples: 1,
        cpu: [5e-324, 5e-324],
        memory: [5e-324, 5e-324],
        disk: [5e-324, 5e-324],
        load: [5e-324, 5e-324],
      },
      {
        host: 'roll-b',
        minute: 31,
        samples: 2,
        cpu: [0, 0],
        memory: [0, 0],
        disk: [0, 0],
        load: [0, 0],
      },
    ]);
    // An hour long past: the first run rolls up everything raw history still holds.
    await insertHistory(old, [
      {
        host: 'roll-a',
        minute: 0,
        samples: 2,
        cpu: [33, 34],
        memory: [44, 45],
        disk: [55, 56],
        load: [3, 4],
      },
    ]);

    const first = await server.client.admin.runTask({ name: 'hourly-rollups' });
    expect(first).toMatchObject({ ran: true, task: { runs: 1, failures: 0, lastError: '' } });
    const rows = await hourly();
    // Means weighted by samples, computed by hand: (10·1 + 20·3 + 50·2) / 6 and so on.
    const expected = [
      {
        host: 'roll-a',
        hour: old,
        samples: 2,
        cpu: [33, 34],
        memory: [44, 45],
        disk: [55, 56],
        load: [3, 4],
      },
      {
        host: 'roll-a',
        hour: h,
        samples: 6,
        cpu: [170 / 6, 70],
        memory: [190 / 6, 60],
        disk: [424 / 6, 72],
        load: [5 / 6, 2],
      },
      {
        host: 'roll-a',
        hour: next,
        samples: 4,
        cpu: [90, 95],
        memory: [1, 1],
        disk: [1, 1],
        load: [1, 1],
      },
      {
        host: 'roll-b',
        hour: h,
        samples: 3,
        cpu: [0, 5e-324],
        memory: [0, 5e-324],
        disk: [0, 5e-324],
        load: [0, 5e-324],
      },
    ];
    expect(rows.map((r) => [r.host, r.hour.toISOString(), r.samples])).toEqual(
      expected.map((e) => [e.host, e.hour.toISOString(), e.samples]),
    );
    for (const [i, e] of expected.entries()) {
      const r = rows[i]!;
      expect(r.cpu_avg).toBeCloseTo(e.cpu[0]!, 9);
      expect(r.cpu_max).toBe(e.cpu[1]);
      expect(r.memory_avg).toBeCloseTo(e.memory[0]!, 9);
      expect(r.memory_max).toBe(e.memory[1]);
      expect(r.disk_avg).toBeCloseTo(e.disk[0]!, 9);
      expect(r.disk_max).toBe(e.disk[1]);
      expect(r.load_avg_1m_avg).toBeCloseTo(e.load[0]!, 9);
      expect(r.load_avg_1m_max).toBe(e.load[1]);
    }

    // Again: the same rows, not added twice.
    expect(await server.client.admin.runTask({ name: 'hourly-rollups' })).toMatchObject({
      ran: true,
    });
    expect(await hourly()).toEqual(rows);

    // A late row of a recent hour is taken in by the next run; the hours before the recent
    // ones are rolled up once and left.
    await insertHistory(h, [
      {
        host: 'roll-a',
        minute: 40,
        samples: 6,
        cpu: [0, 100],
        memory: [0, 0],
        disk: [0, 0],
        load: [0, 0],
      },
    ]);
    await insertHistory(old, [
      {
        host: 'roll-a',
        minute: 1,
        samples: 2,
        cpu: [0, 0],
        memory: [0, 0],
        disk: [0, 0],
        load: [0, 0],
      },
    ]);
    await server.client.admin.runTask({ name: 'hourly-rollups' });
    const after = await hourly();
    expect(after[0]).toEqual(rows[0]);
    expect(after[1]).toMatchObject({ samples: 12, cpu_max: 100 });
    expect(after[1]!.cpu_avg).toBeCloseTo(170 / 12, 9);
    expect(after.slice(2)).toEqual(rows.slice(2));
  });
});

/** Row counts, the runs of the tasks a wrong call could start, and rows a cleanup would delete. */
async function written() {
  const past = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM command_executions WHERE recorded_at < now() - interval '2 days'`,
  );
  return {
    rows: await counts(),
    past: past.rows[0]!.n,
    // Tasks that do not come due during the test (the frequent ones run on their own).
    runs: server.app
      .jobs()
      .filter((j) => j.intervalMs >= 60_000)
      .map((j) => [j.name, j.runs, j.skipped]),
  };
}

const expectRefused = (path: string, body: Buffer, field: string) =>
  refused(raw, written, path, body, field);

describe('bad input', () => {
  beforeAll(async () => {
    // Rows any cleanup would delete: a refused call must leave them.
    await db.query(
      `INSERT INTO command_executions (id, user_id, command_type, started_at, duration_ms,
         cpu_percent, memory_bytes, exit_code, status, recorded_at)
       VALUES (gen_random_uuid(), 'refused', 'shell', now() - interval '40 days', 1, 1, 1, 0,
               'completed', now() - interval '40 days')`,
    );
  });

  it.each<[string, string]>([
    ['empty', ''],
    ['a NUL', 'retention-cleanup\u0000'],
    ['257 bytes', 'r'.repeat(257)],
    ['258 bytes of 129 characters', 'é'.repeat(129)],
  ])('RunTask refuses a name of %s', async (_what, name) => {
    await expectRefused(`${A}RunTask`, encode(RunTaskRequest, { name }), 'name');
  });

  it('RunTask refuses a name that is not UTF-8', async () => {
    // Field 1, length 3: "r", then 0xff 0xfe (never valid in UTF-8).
    await expectRefused(`${A}RunTask`, Buffer.from([0x0a, 0x03, 0x72, 0xff, 0xfe]), 'name');
  });

  it('RunTask takes a name of 256 bytes (and finds no such task)', async () => {
    expect(await codeOf(server.client.admin.runTask({ name: 'r'.repeat(256) }))).toBe(
      status.NOT_FOUND,
    );
  });

  const fields = {
    executions_days: 'executionsDays',
    violations_days: 'violationsDays',
    load_history_days: 'loadHistoryDays',
    rollups_days: 'rollupsDays',
  } as const;
  for (const [field, key] of Object.entries(fields)) {
    it.each([3651, 4_294_967_295])(`CleanupOldData refuses ${field} = %d`, async (days) => {
      // The other fields valid and short: a call that went ahead would delete the rows.
      const request: CleanupOldDataRequest = {
        executionsDays: 1,
        violationsDays: 1,
        loadHistoryDays: 1,
        rollupsDays: 1,
        [key]: days,
      };
      await expectRefused(`${A}CleanupOldData`, encode(CleanupOldDataRequest, request), field);
    });
  }

  it('CleanupOldData takes 3650 days (the bound) and 1 day', async () => {
    const long = await server.client.admin.cleanupOldData({
      executionsDays: 3650,
      violationsDays: 3650,
      loadHistoryDays: 3650,
      rollupsDays: 3650,
    });
    expect(long.deleted.find((d) => d.table === 'command_executions')).toEqual({
      table: 'command_executions',
      rows: 0,
    });
    const short = await server.client.admin.cleanupOldData({
      executionsDays: 1,
      violationsDays: 0,
      loadHistoryDays: 0,
      rollupsDays: 0,
    });
    expect(short.deleted.find((d) => d.table === 'command_executions')!.rows).toBeGreaterThan(0);
  });

  it('ListTasks refuses a body that does not decode, and answers a body with unknown fields', async () => {
    // Field 1 says 5 bytes follow; one does. ListTasksRequest has no field to name.
    await expectRefused(`${A}ListTasks`, Buffer.from([0x0a, 0x05, 0x61]), 'request');
    // An unknown field (proto3 skips it) is a request like any other.
    const ok = await raw.unary(`${A}ListTasks`, Buffer.from([0x08, 0x01]));
    expect(status[ok.code]).toBe('OK');
    expect(ListTasksResponse.decode(ok.body!).replica).toBe(REPLICA);
  });
});
