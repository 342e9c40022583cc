import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { ExecutionRecord, QuotaDecisionRequest } from '../../src/quotas/ports.js';
import { Database } from '../../src/store/Database.js';
import { PgCommandQuotaStore } from '../../src/store/PgCommandQuotaStore.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { sqlSession } from '../support/sqlSession.js';

/**
 * Lock waits of command quota statements, provoked with a second session that holds rows: a
 * record that cannot be stored in its time is refused and leaves nothing behind, without
 * marking the database down for everyone; a record that creates a usage row never waits on a
 * decision out of lock order, so the decision beside it is made, not given the failure mode.
 */

let db: TestDatabase;
let database: Database;
let store: PgCommandQuotaStore;
let holder: pg.Client;

const decision = (userId: string, commandType = 'shell'): QuotaDecisionRequest => ({
  userId,
  commandType,
  cost: 1,
  limits: { daily: 100, weekly: null, monthly: null },
  idempotencyKey: null,
  timezone: 'UTC',
  reservationTtlS: 3600,
});

const execution = (
  userId: string,
  reservationId: string | null,
  commandType = 'shell',
): ExecutionRecord => ({
  reservationId,
  idempotencyKey: null,
  userId,
  commandType,
  host: 'h',
  startedAt: null,
  durationMs: 5,
  cpuPercent: 1,
  memoryBytes: 1,
  exitCode: 0,
  status: 'completed',
  timezone: 'UTC',
});

beforeAll(async () => {
  db = await createTestDatabase();
  // The decision bound of the service's default, and a record budget four times as long.
  database = new Database({ url: db.url, timeoutMs: 250, poolSize: 6, logger: silentLogger() });
  store = new PgCommandQuotaStore(database, { timeoutMs: 250, recordTimeoutMs: 1000 });
  holder = await sqlSession(db.url);
  // Connections opened and the stored functions planned before the tests: on a loaded machine
  // a cold first decision can take longer than its 250 ms bound, which is not what they test.
  for (let round = 0; round < 2; round++)
    await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        store.decide(decision(`warm-up-${i}`)).catch(() => undefined),
      ),
    );
});

afterAll(async () => {
  await holder?.end();
  await database?.close();
  await db?.drop();
});

describe('command quota statements waiting on locks', () => {
  it('refuse a record not stored in its time, store nothing of it, and keep the database up', async () => {
    const d = await store.decide(decision('held'));
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM command_reservations WHERE id = $1 FOR UPDATE', [
      d.reservationId,
    ]);
    const started = performance.now();
    const refused = await store.record(execution('held', d.reservationId)).catch((e) => e);
    const waited = performance.now() - started;
    // Past the decision bound (250 ms) and up to the record's own: then refused, not stored.
    expect(refused).toBeInstanceOf(StoreUnavailableError);
    expect(waited).toBeGreaterThan(250);
    expect(database.available).toBe(true);
    expect((await store.decide(decision('someone-else'))).allowed).toBe(true);
    await holder.query('COMMIT');
    const stored = await db.query('SELECT 1 FROM command_executions WHERE user_id = $1', ['held']);
    expect(stored.rowCount).toBe(0);
    // The executor's retry is stored and settles the reservation once.
    const retried = await store.record(execution('held', d.reservationId));
    const settled = await db.query<{ execution_id: string }>(
      'SELECT execution_id FROM command_reservations WHERE id = $1',
      [d.reservationId],
    );
    expect(settled.rows[0]!.execution_id).toBe(retried.executionId);
  });

  it('decides beside a record that creates a usage row, without a lock cycle', async () => {
    const u = 'cycle';
    await db.query(
      `INSERT INTO command_usage (user_id, command_type) VALUES ($1, 'b'), ($1, 'c')`,
      [u],
    );
    // A record of (u, a) new, (u, b) and (u, c), all counted, waits on (u, c) held here.
    await holder.query('BEGIN');
    await holder.query(
      `SELECT 1 FROM command_usage WHERE user_id = $1 AND command_type = 'c' FOR UPDATE`,
      [u],
    );
    const recorded = Promise.all(['a', 'b', 'c'].map((t) => store.record(execution(u, null, t))));
    await new Promise((r) => setTimeout(r, 100));
    // The first goes alone (an idle batcher); the next three share a batch with (u, a), (u, b).
    const warm = store.decide(decision('warm'));
    const decided = Promise.all([
      store.decide(decision('innocent')),
      store.decide(decision(u, 'a')),
      store.decide(decision(u, 'b')),
    ]);
    await new Promise((r) => setTimeout(r, 30));
    await holder.query('COMMIT');
    expect((await warm).allowed).toBe(true);
    expect((await decided).map((d) => d.allowed)).toEqual([true, true, true]);
    expect(await recorded).toHaveLength(3);
    const usage = await db.query<{ command_type: string; day_used: string }>(
      'SELECT command_type, day_used FROM command_usage WHERE user_id = $1 ORDER BY 1',
      [u],
    );
    expect(usage.rows).toEqual([
      { command_type: 'a', day_used: '2' },
      { command_type: 'b', day_used: '2' },
      { command_type: 'c', day_used: '1' },
    ]);
  });
});
