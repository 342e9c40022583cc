import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status as grpcStatus } from '@grpc/grpc-js';
import { Period, QuotaCallError, typesV1 } from '@quota-authority/client';
import {
  CheckCommandQuotaRequest,
  RecordExecutionRequest,
  type ExecutionSummary,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import type { CommandQuotaService } from '../../src/quotas/CommandQuotaService.js';
import type { ExecutionInput } from '../../src/quotas/types.js';
import { rowCounter, settledCounts, type RowCounts } from '../support/rowCounts.js';
import { flushBuffers } from '../support/flushBuffers.js';
import { setTimeQuotas, type SetTimeQuotas } from '../support/setTimeQuotas.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

// Reservations and executions: idempotent retries, units given back, expiry, the errors for
// reservations that cannot be settled (over gRPC, writing nothing), and the recent figures of
// GetQuotaStatus. What depends on time runs through the store with a time the test sets; the
// rest through a real server. Both on one database, on different users.

const TTL_S = 120;
const SECOND = 1000;
const HOUR = 3_600_000;

let db: TestDatabase;
let server: TestServer;
let counts: () => Promise<RowCounts>;

let quotas: SetTimeQuotas;
let timed: CommandQuotaService;
/**
 * The time of the set-time store. In 2031: the server's cleanup job deletes only what expired
 * before its own (real) clock, so it never touches these rows.
 */
let now = new Date('2031-03-12T10:00:00Z');
const T0 = Date.parse('2031-03-12T10:00:00Z');
const at = (ms: number) => {
  now = new Date(ms);
};

const check = (r: Partial<CheckCommandQuotaRequest>) =>
  server.client.quota.checkCommandQuota(
    CheckCommandQuotaRequest.fromPartial({ commandType: 'shell', ...r }),
  );
const record = (r: Partial<RecordExecutionRequest>) =>
  server.client.quota.recordExecution(
    RecordExecutionRequest.fromPartial({ commandType: 'shell', ...r }),
  );
const ms = (d: { seconds: number; nanos: number } | undefined) =>
  d ? d.seconds * 1000 + d.nanos / 1e6 : 0;

/** Daily, weekly, monthly usage of `userId`'s command type as GetQuotaStatus reads it. */
async function usedByStatus(userId: string, commandType = 'shell'): Promise<number[]> {
  const s = await server.client.quota.getQuotaStatus({ userId });
  return (
    s.commands.find((c) => c.commandType === commandType)?.periods.map((p) => p.used) ?? [0, 0, 0]
  );
}

/** Everything the command quota tables hold, to show that a refused call changed none of it. */
async function commandState() {
  const [usage, reservations, executions, keys] = await Promise.all([
    db.query('SELECT * FROM command_usage ORDER BY user_id, command_type'),
    db.query('SELECT * FROM command_reservations ORDER BY id'),
    db.query('SELECT id, request_key, reservation_id FROM command_executions ORDER BY id'),
    db.query('SELECT key, response FROM idempotency_keys ORDER BY key'),
  ]);
  return {
    usage: usage.rows,
    reservations: reservations.rows,
    executions: executions.rows,
    keys: keys.rows,
  };
}

async function expectError(call: Promise<unknown>, code: grpcStatus, detail: string) {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QuotaCallError);
  expect({ code: (err as QuotaCallError).code, details: (err as QuotaCallError).details }).toEqual({
    code,
    details: expect.stringContaining(detail) as string,
  });
}

/** The call fails with `code` and no table gains, loses or changes a row. */
async function expectRefused(call: () => Promise<unknown>, code: grpcStatus, detail: string) {
  const [rowsBefore, stateBefore] = await Promise.all([counts(), commandState()]);
  await expectError(call(), code, detail);
  expect(await counts()).toEqual(rowsBefore);
  expect(await commandState()).toEqual(stateBefore);
}

/** Execution input for the set-time service. */
const execution = (e: Partial<ExecutionInput> & { userId: string }): ExecutionInput => ({
  commandType: 'shell',
  durationMs: 1000,
  cpuPercent: 10,
  memoryBytes: 1000,
  exitCode: 0,
  status: 'completed',
  ...e,
});

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, {
    QUOTA_DB_TIMEOUT_MS: '5000',
    QUOTA_RESERVATION_TTL_S: String(TTL_S),
    // The replica samples its own load once, at start: later samples would add rows.
    QUOTA_LOAD_INTERVAL_MS: '600000',
  });
  counts = await rowCounter(db, () => flushBuffers(server.client));

  quotas = await setTimeQuotas(db.url, () => now);
  timed = quotas.service('UTC', TTL_S);
  // The start's own load sample reaches load_history on the next flush: wait it out.
  await settledCounts(counts);
});

afterAll(async () => {
  await quotas?.stop();
  await server?.stop();
  await db?.drop();
});

describe('idempotent retries', () => {
  it('a retried request_id returns the same reservation and counts once, also concurrently', async () => {
    const first = await check({ userId: 'retry', requestId: 'cmd-1' });
    const again = await check({ userId: 'retry', requestId: 'cmd-1' });
    expect(first.allowed).toBe(true);
    expect(first.reservationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(again).toEqual(first);
    const together = await Promise.all(
      Array.from({ length: 8 }, () => check({ userId: 'retry', requestId: 'cmd-2' })),
    );
    expect(new Set(together.map((r) => r.reservationId)).size).toBe(1);
    expect(together.every((r) => r.allowed)).toBe(true);
    expect(together[0]!.reservationId).not.toBe(first.reservationId);
    expect(await usedByStatus('retry')).toEqual([2, 2, 2]);
    const stored = await db.query(
      `SELECT count(*)::int AS n FROM command_reservations WHERE user_id = 'retry'`,
    );
    expect(stored.rows[0]).toEqual({ n: 2 });
  });

  it('a retried RecordExecution is stored once and returns the same execution_id', async () => {
    const { reservationId } = await check({ userId: 'rec-retry' });
    const req = {
      userId: 'rec-retry',
      reservationId,
      requestId: 'exec-1',
      duration: { seconds: 2, nanos: 0 },
      status: 'completed',
    };
    const first = await record(req);
    const retries = await Promise.all([record(req), record(req), record(req)]);
    expect(first.executionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(retries.map((r) => r.executionId)).toEqual(Array(3).fill(first.executionId));
    const rows = await db.query<{ id: string }>(
      `SELECT id FROM command_executions WHERE user_id = 'rec-retry'`,
    );
    expect(rows.rows).toEqual([{ id: first.executionId }]);
    const res = await db.query(
      'SELECT execution_id, settled_at IS NOT NULL AS settled FROM command_reservations WHERE id = $1',
      [reservationId],
    );
    expect(res.rows).toEqual([{ execution_id: first.executionId, settled: true }]);
    expect(await usedByStatus('rec-retry')).toEqual([1, 1, 1]);

    // Without a reservation a retry is stored once and counted once.
    const plain = { userId: 'rec-retry', requestId: 'exec-2' };
    const [p1, p2] = [await record(plain), await record(plain)];
    expect(p2.executionId).toBe(p1.executionId);
    expect(await usedByStatus('rec-retry')).toEqual([2, 2, 2]);
  });
});

describe('giving units back', () => {
  it.each(['cancelled', 'not_started'])(
    'a %s execution gives its unit back, and the unit admits another command',
    async (status) => {
      const userId = `give-back-${status}`;
      await server.client.admin.upsertCommandQuotaRule({
        rule: typesV1.CommandQuotaRule.fromPartial({ userId, commandType: 'shell', daily: 1 }),
      });
      const first = await check({ userId });
      expect(first.allowed).toBe(true);
      const full = await check({ userId });
      expect(full).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED: daily' });
      await record({ userId, reservationId: first.reservationId, status });
      expect(await usedByStatus(userId)).toEqual([0, 0, 0]);
      const stored = await db.query<{ status: string }>(
        'SELECT status FROM command_executions WHERE reservation_id = $1',
        [first.reservationId],
      );
      expect(stored.rows).toEqual([{ status }]);
      const again = await check({ userId });
      expect(again.allowed).toBe(true);
      expect(again.periods.find((p) => p.period === Period.PERIOD_DAILY)).toMatchObject({
        used: 1,
        remaining: 0,
      });
    },
  );

  it('a completed, failed or timed-out execution keeps its unit', async () => {
    for (const status of ['completed', 'failed', 'timeout', '']) {
      const { reservationId } = await check({ userId: 'keeps' });
      await record({ userId: 'keeps', reservationId, status, exitCode: status === '' ? 0 : 1 });
    }
    expect(await usedByStatus('keeps')).toEqual([4, 4, 4]);
  });

  it('an execution with no reservation is counted when recorded (a cancelled one is not)', async () => {
    await record({ userId: 'unreserved', status: 'completed' });
    await record({ userId: 'unreserved', status: 'failed', exitCode: 2 });
    expect(await usedByStatus('unreserved')).toEqual([2, 2, 2]);
    await record({ userId: 'unreserved', status: 'cancelled' });
    expect(await usedByStatus('unreserved')).toEqual([2, 2, 2]);
    // Counted executions count against the limit of later decisions.
    await server.client.admin.upsertCommandQuotaRule({
      rule: typesV1.CommandQuotaRule.fromPartial({
        userId: 'unreserved',
        commandType: 'shell',
        daily: 3,
      }),
    });
    expect((await check({ userId: 'unreserved' })).allowed).toBe(true);
    expect(await check({ userId: 'unreserved' })).toMatchObject({
      allowed: false,
      reason: 'QUOTA_EXCEEDED: daily',
    });
  });
});

describe('reservations that expire (set time)', () => {
  const used = async (userId: string) =>
    (await timed.status(userId)).commands
      .find((c) => c.commandType === 'shell')!
      .periods.map((p) => p.used);

  it('a reservation expires after QUOTA_RESERVATION_TTL_S', async () => {
    const { reservationId } = await check({ userId: 'ttl' });
    const r = await db.query<{ ttl: number }>(
      `SELECT extract(epoch FROM expires_at - created_at)::float8 AS ttl
         FROM command_reservations WHERE id = $1`,
      [reservationId],
    );
    expect(r.rows[0]!.ttl).toBe(TTL_S);
  });

  it('an expired reservation stays counted, and a cancel after expiry gives nothing back', async () => {
    at(T0);
    const a = await timed.check({ userId: 'expiring', commandType: 'shell', cost: 1 });
    const b = await timed.check({ userId: 'expiring', commandType: 'shell', cost: 2 });
    expect([a.allowed, b.allowed]).toEqual([true, true]);
    expect(await used('expiring')).toEqual([3, 3, 3]);
    // Never settled, long past its expiry: still counted.
    at(T0 + 2 * HOUR);
    expect(await used('expiring')).toEqual([3, 3, 3]);
    // One millisecond before expiry a cancel gives b's 2 units back...
    at(T0 + TTL_S * SECOND - 1);
    await timed.record(
      execution({ userId: 'expiring', reservationId: b.reservationId!, status: 'cancelled' }),
    );
    expect(await used('expiring')).toEqual([1, 1, 1]);
    // ...at expiry, a's cancel is stored and settles it, but gives nothing back.
    at(T0 + TTL_S * SECOND);
    const late = await timed.record(
      execution({ userId: 'expiring', reservationId: a.reservationId!, status: 'not_started' }),
    );
    expect(late.executionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await used('expiring')).toEqual([1, 1, 1]);
    const settled = await db.query('SELECT execution_id FROM command_reservations WHERE id = $1', [
      a.reservationId,
    ]);
    expect(settled.rows).toEqual([{ execution_id: late.executionId }]);
  });

  it('a cancel gives units back only to the periods they were counted in', async () => {
    // Counted on Wednesday 2031-03-12 at 23:59, cancelled on Thursday at 00:00:30 (within TTL).
    const wednesday = Date.parse('2031-03-12T23:59:00Z');
    at(wednesday);
    const r = await timed.check({ userId: 'across', commandType: 'shell', cost: 1 });
    at(wednesday + 60 * SECOND);
    await timed.check({ userId: 'across', commandType: 'shell', cost: 1 });
    expect(await used('across')).toEqual([1, 2, 2]);
    at(wednesday + 90 * SECOND);
    await timed.record(
      execution({ userId: 'across', reservationId: r.reservationId!, status: 'cancelled' }),
    );
    // Thursday's count keeps its one; the week and the month get theirs back.
    expect(await used('across')).toEqual([1, 1, 1]);
  });

  it('GetQuotaStatus counts the executions of the last 24 h only', async () => {
    at(T0);
    await timed.record(execution({ userId: 'recent-24h', durationMs: 400 }));
    at(T0 + HOUR);
    await timed.record(execution({ userId: 'recent-24h', durationMs: 800, exitCode: 3 }));
    // The last 24 h: (now - 24 h, now].
    at(T0 + 24 * HOUR - 1);
    const both = await timed.status('recent-24h');
    expect(both.recent).toMatchObject({ count: 2, failures: 1, averageDurationMs: 600 });
    at(T0 + 24 * HOUR);
    const one = await timed.status('recent-24h');
    expect(one.recent).toMatchObject({ count: 1, failures: 1, averageDurationMs: 800 });
  });
});

describe('reservations that cannot be settled (over gRPC)', () => {
  it('an unknown reservation id is NOT_FOUND and writes nothing', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    await expectRefused(
      () => record({ userId: 'stranger', reservationId: unknown, requestId: 'x-1' }),
      grpcStatus.NOT_FOUND,
      unknown,
    );
    // Not even the usage row of a user never seen before.
    const rows = await db.query(`SELECT 1 FROM command_usage WHERE user_id = 'stranger'`);
    expect(rows.rowCount).toBe(0);
  });

  it('a reservation of another user or command type is FAILED_PRECONDITION and writes nothing', async () => {
    const { reservationId } = await check({ userId: 'owner', commandType: 'code' });
    await expectRefused(
      () => record({ userId: 'intruder', commandType: 'code', reservationId }),
      grpcStatus.FAILED_PRECONDITION,
      reservationId,
    );
    await expectRefused(
      () => record({ userId: 'owner', commandType: 'shell', reservationId, requestId: 'x-2' }),
      grpcStatus.FAILED_PRECONDITION,
      reservationId,
    );
    await expectRefused(
      () =>
        record({
          userId: 'owner',
          commandType: 'code',
          reservationId: reservationId.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
        }),
      grpcStatus.NOT_FOUND,
      'not found',
    );
    // The owner can still settle it.
    await record({ userId: 'owner', commandType: 'code', reservationId, status: 'cancelled' });
    expect(await usedByStatus('owner', 'code')).toEqual([0, 0, 0]);
  });

  it('a reservation settled twice is FAILED_PRECONDITION and writes nothing', async () => {
    const { reservationId } = await check({ userId: 'twice' });
    await record({ userId: 'twice', reservationId, requestId: 'first' });
    for (const second of [
      { requestId: 'second' },
      { requestId: '' },
      { requestId: 'third', status: 'cancelled' },
    ]) {
      await expectRefused(
        () => record({ userId: 'twice', reservationId, ...second }),
        grpcStatus.FAILED_PRECONDITION,
        'already settled',
      );
    }
    expect(await usedByStatus('twice')).toEqual([1, 1, 1]);
    // Two settlements of one reservation in one batch: one stored, the other refused.
    const { reservationId: shared } = await check({ userId: 'twice' });
    const outcomes = await Promise.allSettled([
      record({ userId: 'twice', reservationId: shared, requestId: 'p-1' }),
      record({ userId: 'twice', reservationId: shared, requestId: 'p-2' }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const rejected = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect((rejected.reason as QuotaCallError).code).toBe(grpcStatus.FAILED_PRECONDITION);
    const rows = await db.query(
      'SELECT count(*)::int AS n FROM command_executions WHERE reservation_id = $1',
      [shared],
    );
    expect(rows.rows[0]).toEqual({ n: 1 });
  });
});

describe('GetQuotaStatus recent figures', () => {
  /** percentile_cont(0.95): linear interpolation between the two nearest ranks. */
  function p95(values: number[]): number {
    const sorted = [...values].sort((x, y) => x - y);
    const pos = 0.95 * (sorted.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
  }
  const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;

  interface Run {
    commandType: string;
    durationMs: number;
    cpu: number;
    memory: number;
    exitCode: number;
    status: string;
  }

  function expectSummary(actual: ExecutionSummary | undefined, runs: Run[]) {
    const durations = runs.map((r) => r.durationMs);
    expect(actual).toBeDefined();
    expect(actual!.count).toBe(runs.length);
    expect(actual!.failures).toBe(
      runs.filter((r) => r.exitCode !== 0 || !['', 'completed'].includes(r.status)).length,
    );
    expect(ms(actual!.averageDuration)).toBeCloseTo(mean(durations), 3);
    expect(ms(actual!.p95Duration)).toBeCloseTo(p95(durations), 3);
    expect(actual!.averageCpuPercent).toBeCloseTo(mean(runs.map((r) => r.cpu)), 9);
    expect(actual!.maxMemoryBytes).toBe(Math.max(...runs.map((r) => r.memory)));
  }

  it('per command type and in total: count, failures, average and p95 duration, CPU, peak memory', async () => {
    const statuses = ['completed', 'completed', 'failed', 'timeout', 'completed', 'cancelled', ''];
    const runs: Run[] = Array.from({ length: 23 }, (_, i) => ({
      commandType: i % 3 === 0 ? 'test' : 'shell',
      // Durations with a fraction of a millisecond, in no order.
      durationMs: ((i * 7919) % 23) * 137.25 + 12.5,
      cpu: ((i * 31) % 17) * 5.5,
      memory: 1_000_000 + ((i * 104_729) % 23) * 4096,
      exitCode: i % 5 === 4 ? 1 : 0,
      status: statuses[i % statuses.length]!,
    }));
    for (const r of runs) {
      await record({
        userId: 'figures',
        commandType: r.commandType,
        duration: {
          seconds: Math.floor(r.durationMs / 1000),
          nanos: Math.round((r.durationMs % 1000) * 1e6),
        },
        cpuPercent: r.cpu,
        memoryBytes: r.memory,
        exitCode: r.exitCode,
        status: r.status,
        host: 'exec-1',
        startedAt: new Date(Date.now() - 60_000),
      });
    }
    const s = await server.client.quota.getQuotaStatus({ userId: 'figures' });
    for (const type of ['shell', 'test']) {
      expectSummary(
        s.commands.find((c) => c.commandType === type)?.recent,
        runs.filter((r) => r.commandType === type),
      );
    }
    expectSummary(s.recent, runs);
    // A command type without executions has zeros.
    expect(s.commands.find((c) => c.commandType === 'code')?.recent).toEqual({
      count: 0,
      failures: 0,
      averageDuration: { seconds: 0, nanos: 0 },
      averageCpuPercent: 0,
      maxMemoryBytes: 0,
      p95Duration: { seconds: 0, nanos: 0 },
    });
    // The stored figures are the ones sent.
    const stored = await db.query<{ host: string; n: number }>(
      `SELECT host, count(*)::int AS n FROM command_executions WHERE user_id = 'figures' GROUP BY host`,
    );
    expect(stored.rows).toEqual([{ host: 'exec-1', n: 23 }]);
  });
});
