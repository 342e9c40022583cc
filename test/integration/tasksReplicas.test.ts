import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuotaCallError } from '@quota-authority/client';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';
import { sqlSession } from '../support/sqlSession.js';

// Two replicas on one database: one cleanup at a time, whether started by RunTask or by
// CleanupOldData, on either. The test holds the first cleanup inside its work (a table lock
// its DELETE waits for) while it asks the other replica, so the calls truly overlap.

let db: TestDatabase;
let a: TestServer;
let b: TestServer;

const ENV = {
  // The held cleanup waits on the test's lock: well within the admin bound (4x this).
  QUOTA_DB_TIMEOUT_MS: '2000',
  QUOTA_LOAD_INTERVAL_MS: '600000',
};
const CONFIGURED = { executionsDays: 0, violationsDays: 0, loadHistoryDays: 0, rollupsDays: 0 };

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => status.OK,
    (err: QuotaCallError) => err.code,
  );

/** `n` executions recorded 40 days ago (past the configured 30), tagged `tag`. */
async function seedOld(tag: string, n: number): Promise<void> {
  await db.query(
    `INSERT INTO command_executions (id, user_id, command_type, started_at, duration_ms,
       cpu_percent, memory_bytes, exit_code, status, recorded_at)
     SELECT gen_random_uuid(), $1, 'shell', t, 1, 1, 1, 0, 'completed', t
       FROM generate_series(1, $2), LATERAL (SELECT now() - interval '40 days' AS t) x`,
    [tag, n],
  );
}

async function left(tag: string): Promise<number> {
  const r = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM command_executions WHERE user_id = $1',
    [tag],
  );
  return Number(r.rows[0]!.n);
}

/**
 * Runs `start` while the test holds command_executions against writers (reads go on), so that
 * the cleanup it starts stops at its first DELETE, inside its lock; `meanwhile` runs once it
 * waits there.
 * The lock is released after `meanwhile`; resolves with what `start` answered.
 */
async function holding<T>(
  start: () => Promise<T>,
  meanwhile: (settled: () => boolean) => Promise<void>,
): Promise<T> {
  const holder = await sqlSession(db.url);
  try {
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE command_executions IN EXCLUSIVE MODE');
    let done = false;
    const started = start().finally(() => (done = true));
    started.catch(() => undefined);
    await waitFor(async () => {
      const r = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_locks
          WHERE relation = 'command_executions'::regclass AND NOT granted`,
      );
      return Number(r.rows[0]!.n) > 0;
    });
    await meanwhile(() => done);
    await holder.query('COMMIT');
    return await started;
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  [a, b] = await Promise.all([
    startTestServer(db.url, { ...ENV, QUOTA_HOST_NAME: 'replica-a' }),
    startTestServer(db.url, { ...ENV, QUOTA_HOST_NAME: 'replica-b' }),
  ]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

describe('cleanup on two replicas', () => {
  it('answers each replica by its own name', async () => {
    expect((await a.client.admin.listTasks({})).replica).toBe('replica-a');
    expect((await b.client.admin.listTasks({})).replica).toBe('replica-b');
  });

  it('refuses CleanupOldData and skips RunTask on both replicas while one replica cleans up', async () => {
    await seedOld('held-1', 3);
    const answer = await holding(
      () => a.client.admin.cleanupOldData(CONFIGURED),
      async (settled) => {
        expect(await codeOf(b.client.admin.cleanupOldData(CONFIGURED))).toBe(
          status.FAILED_PRECONDITION,
        );
        expect(await b.client.admin.runTask({ name: 'retention-cleanup' })).toMatchObject({
          ran: false,
          task: { runs: 0, skipped: 1, running: false },
        });
        // On the replica that cleans up too: its task takes the same lock as the call.
        expect(await a.client.admin.runTask({ name: 'retention-cleanup' })).toMatchObject({
          ran: false,
          task: { runs: 0, skipped: 1 },
        });
        expect(await codeOf(a.client.admin.cleanupOldData(CONFIGURED))).toBe(
          status.FAILED_PRECONDITION,
        );
        // The first cleanup was still at work all along.
        expect(settled()).toBe(false);
        expect(await left('held-1')).toBe(3);
      },
    );
    expect(answer.deleted.find((d) => d.table === 'command_executions')?.rows).toBe(3);
    expect(await left('held-1')).toBe(0);
  });

  it('refuses CleanupOldData and skips RunTask on the other replica while a RunTask cleans up', async () => {
    await seedOld('held-2', 2);
    const answer = await holding(
      () => b.client.admin.runTask({ name: 'retention-cleanup' }),
      async (settled) => {
        const listed = await b.client.admin.listTasks({});
        expect(listed.tasks.find((t) => t.name === 'retention-cleanup')).toMatchObject({
          running: true,
        });
        expect(await codeOf(a.client.admin.cleanupOldData(CONFIGURED))).toBe(
          status.FAILED_PRECONDITION,
        );
        expect(await a.client.admin.runTask({ name: 'retention-cleanup' })).toMatchObject({
          ran: false,
          task: { runs: 0, skipped: 2 },
        });
        expect(settled()).toBe(false);
      },
    );
    expect(answer).toMatchObject({
      ran: true,
      task: { runs: 1, skipped: 1, failures: 0, running: false },
    });
    expect(await left('held-2')).toBe(0);

    // Released: either replica cleans up again, one after the other.
    await seedOld('after', 1);
    const first = await a.client.admin.cleanupOldData(CONFIGURED);
    expect(first.deleted.find((d) => d.table === 'command_executions')?.rows).toBe(1);
    expect(await b.client.admin.runTask({ name: 'retention-cleanup' })).toMatchObject({
      ran: true,
      task: { runs: 2 },
    });
  });
});
