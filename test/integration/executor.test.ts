import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  loadSamplerStatus,
  QuotaExceededError,
  QuotaExecutor,
  QuotaUnavailableError,
  SystemOverloadedError,
  typesV1,
  type ExecutorOptions,
  type QuotaConnection,
} from '@quota-authority/client';
import type { RecordExecutionRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { droppingRelay, type DroppingRelay } from '../support/droppingRelay.js';
import { report, watch } from '../support/loadStreams.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';
import { waitFor } from '../support/waitFor.js';

// QuotaExecutor against a real server and database: denials, the delay, the measured child
// process as stored, retries across a dropped connection, cancels, failures and the load
// sampler. Executors that do not test load reporting turn it off: this machine's real load
// would otherwise throttle their hosts.

const MIB = 1024 * 1024;

let db: TestDatabase;
let server: TestServer;
const executors: QuotaExecutor[] = [];

/** An executor on the test server that does not report load, closed after the file. */
function executor(options: ExecutorOptions = {}, connection?: QuotaConnection): QuotaExecutor {
  const e = new QuotaExecutor(connection ?? server.client, {
    host: 'exec-test',
    reportLoad: false,
    sampleIntervalMs: 20,
    ...options,
  });
  executors.push(e);
  return e;
}

async function rule(userId: string, limits: { daily?: number; weekly?: number; monthly?: number }) {
  await server.client.admin.upsertCommandQuotaRule({
    rule: typesV1.CommandQuotaRule.fromPartial({ userId, commandType: 'shell', ...limits }),
  });
}

/** Daily, weekly and monthly usage as GetQuotaStatus reads it. */
async function used(userId: string): Promise<number[]> {
  const s = await server.client.quota.getQuotaStatus({ userId });
  return s.commands.find((c) => c.commandType === 'shell')?.periods.map((p) => p.used) ?? [0, 0, 0];
}

interface ExecutionRow {
  id: string;
  request_key: string | null;
  reservation_id: string | null;
  host: string;
  started_at: Date;
  duration_ms: number;
  cpu_percent: number;
  memory_bytes: string;
  exit_code: number;
  status: string;
}

async function executions(userId: string): Promise<ExecutionRow[]> {
  const r = await db.query<ExecutionRow>(
    `SELECT id, request_key, reservation_id, host, started_at, duration_ms, cpu_percent,
            memory_bytes, exit_code, status
       FROM command_executions WHERE user_id = $1 ORDER BY recorded_at`,
    [userId],
  );
  return r.rows;
}

async function reservations(userId: string): Promise<number> {
  const r = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM command_reservations WHERE user_id = $1',
    [userId],
  );
  return r.rows[0]!.n;
}

/** Reports `cpuPercent` for `host` and waits until the server applies its factor. */
async function loadHost(host: string, cpuPercent: number, factor: number): Promise<void> {
  const r = await server.client.quota.reportLoad(report({ host, cpuPercent }));
  expect(r.throttleFactor).toBe(factor);
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, { QUOTA_DB_TIMEOUT_MS: '5000' });
});

afterAll(async () => {
  for (const e of executors) e.close();
  await server?.stop();
  await db?.drop();
});

describe('denials', () => {
  /** The starts of the next UTC day, ISO week and month after `now`, as the server's calendar. */
  function nextPeriods(now: Date): Date[] {
    const [y, m, d] = [now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()];
    const toMonday = ((8 - now.getUTCDay()) % 7 || 7) as number;
    return [
      new Date(Date.UTC(y, m, d + 1)),
      new Date(Date.UTC(y, m, d + toMonday)),
      new Date(Date.UTC(y, m + 1, 1)),
    ];
  }
  const dbNow = async () => (await db.query<{ now: Date }>('SELECT now() AS now')).rows[0]!.now;

  it('over quota throws QuotaExceededError with the periods and the reset times, consuming nothing', async () => {
    await rule('over', { daily: 2, weekly: 10, monthly: 100 });
    const e = executor();
    let ran = 0;
    await e.run('over', 'shell', () => ran++);
    await e.run('over', 'shell', () => ran++);
    const before = await dbNow();
    const err = await e.run('over', 'shell', () => ran++).catch((x: unknown) => x);
    const after = await dbNow();
    expect(err).toBeInstanceOf(QuotaExceededError);
    const q = err as QuotaExceededError;
    expect(ran).toBe(2);
    expect(q.reason).toBe('QUOTA_EXCEEDED: daily');
    expect(q.exceeded).toEqual(['daily']);
    expect(q.tier).toBe('default');
    // The calendar of the database's clock (the server's), either side of the call.
    const expected = [nextPeriods(before), nextPeriods(after)];
    const resets = q.periods.map((p) => p.resetsAt);
    expect(expected).toContainEqual(resets);
    expect(q.periods.map(({ resetsAt: _, ...p }) => p)).toEqual([
      { period: 'daily', limit: 2, unlimited: false, used: 2, remaining: 0 },
      { period: 'weekly', limit: 10, unlimited: false, used: 2, remaining: 8 },
      { period: 'monthly', limit: 100, unlimited: false, used: 2, remaining: 98 },
    ]);
    expect(q.retryAt).toEqual(resets[0]);
    expect(await used('over')).toEqual([2, 2, 2]);
    expect(await reservations('over')).toBe(2);
  });

  it('names every exhausted period, and retryAt is when the last of them resets', async () => {
    await rule('over-week', { daily: 5, weekly: 1, monthly: 1 });
    const e = executor();
    await e.run('over-week', 'shell', () => undefined);
    const before = await dbNow();
    const err = (await e.run('over-week', 'shell', () => undefined).catch((x: unknown) => x)) as
      QuotaExceededError | undefined;
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect(err!.exceeded).toEqual(['weekly', 'monthly']);
    const [, week, month] = nextPeriods(before);
    expect(err!.retryAt).toEqual(new Date(Math.max(week!.getTime(), month!.getTime())));
    expect(err!.message).toContain('weekly, monthly');
  });

  it('a host at factor 0 throws SystemOverloadedError carrying the factor; nothing runs or counts', async () => {
    await loadHost('exec-overloaded', 97, 0);
    const e = executor({ host: 'exec-overloaded' });
    let ran = false;
    const err = await e.run('overloaded', 'shell', () => (ran = true)).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(SystemOverloadedError);
    expect(err).toMatchObject({
      reason: 'SYSTEM_OVERLOADED',
      throttleFactor: 0,
      host: 'exec-overloaded',
    });
    expect(ran).toBe(false);
    expect(await used('overloaded')).toEqual([0, 0, 0]);
  });
});

describe('the delay', () => {
  it('a host at 85% CPU (factor 0.6) waits the 0.4 s delay before the command starts', async () => {
    await loadHost('exec-busy', 85, 0.6);
    const e = executor({ host: 'exec-busy' });
    const called = performance.now();
    let started = 0;
    const r = await e.run('delayed', 'shell', () => {
      started = performance.now();
    });
    expect(r.throttleFactor).toBe(0.6);
    expect(r.delayMs).toBeCloseTo(400, 6);
    expect(started - called).toBeGreaterThanOrEqual(r.delayMs);
  });

  it('a signal aborted during the delay records cancelled and gives the unit back', async () => {
    await loadHost('exec-slow', 85, 0.6);
    await rule('cancels', { daily: 1 });
    const e = executor({ host: 'exec-slow' });
    const controller = new AbortController();
    const reason = new Error('user went away');
    setTimeout(() => controller.abort(reason), 100);
    let ran = false;
    const err = await e
      .run('cancels', 'shell', () => (ran = true), { signal: controller.signal })
      .catch((x: unknown) => x);
    expect(err).toBe(reason);
    expect(ran).toBe(false);
    const rows = await executions('cancels');
    expect(rows).toMatchObject([{ status: 'cancelled', exit_code: 0, host: 'exec-slow' }]);
    expect(rows[0]!.reservation_id).not.toBeNull();
    expect(await used('cancels')).toEqual([0, 0, 0]);
    // The unit given back admits another command.
    const again = await e.run('cancels', 'shell', () => 'ran');
    expect(again.value).toBe('ran');
    expect(await used('cancels')).toEqual([1, 1, 1]);
  });
});

describe('running and recording', () => {
  it('stores the measured duration, CPU, peak memory and exit code of a real child process', async () => {
    // ~100 MiB touched, 300 ms of its own CPU time, then exit code 3.
    const script = [
      `const b = Buffer.alloc(${100 * MIB}, 1);`,
      'let x = 0;',
      'while (process.cpuUsage().user + process.cpuUsage().system < 300e3) x += b[x % b.length];',
      "console.log('burnt', b.length);",
      'process.exit(3);',
    ].join('\n');
    const e = executor();
    const t0 = performance.now();
    const r = await e.run('child', 'shell', { command: process.execPath, args: ['-e', script] });
    const wall = performance.now() - t0;
    expect(r.value).toMatchObject({
      exitCode: 3,
      signal: null,
      stdout: `burnt ${100 * MIB}\n`,
      stderr: '',
      truncated: false,
    });
    expect(r.status).toBe('failed');
    expect(r.recorded).toBe(true);
    const m = r.measurements;
    expect(m.cpuSource).toBe('children');
    // The kernel's accounting in 10 ms ticks; the child's own figure was at least 300 ms.
    expect(m.cpuTimeMs).toBeGreaterThanOrEqual(290);
    expect(m.memoryBytes).toBeGreaterThanOrEqual(100 * MIB);

    const [row] = await executions('child');
    expect(row).toMatchObject({
      id: r.executionId,
      reservation_id: r.reservationId,
      host: 'exec-test',
      exit_code: 3,
      status: 'failed',
    });
    expect(row!.duration_ms).toBeCloseTo(m.durationMs, 3);
    expect(row!.duration_ms).toBeGreaterThanOrEqual(m.cpuTimeMs / 2); // one thread burnt it
    expect(row!.duration_ms).toBeLessThanOrEqual(wall);
    expect(row!.cpu_percent).toBeCloseTo(m.cpuPercent, 9);
    expect(row!.cpu_percent).toBeGreaterThan(20);
    expect(row!.cpu_percent).toBeCloseTo((m.cpuTimeMs / m.durationMs) * 100, 9);
    expect(Number(row!.memory_bytes)).toBe(m.memoryBytes);
    expect(row!.started_at.getTime()).toBe(m.startedAt.getTime());
  });

  it('a function that throws is recorded failed and its error propagates', async () => {
    const e = executor();
    const boom = new Error('boom');
    const err = await e
      .run('thrower', 'shell', () => {
        throw boom;
      })
      .catch((x: unknown) => x);
    expect(err).toBe(boom);
    expect(await executions('thrower')).toMatchObject([{ status: 'failed', exit_code: 1 }]);
    expect(await used('thrower')).toEqual([1, 1, 1]);
  });

  it('a function gives its value, the process-wide measurements, tier and periods', async () => {
    await rule('fn-user', { daily: 10 });
    const e = executor();
    const r = await e.run('fn-user', 'shell', async (ctx) => {
      expect(ctx.signal.aborted).toBe(false);
      expect(ctx.reservationId).toMatch(/^[0-9a-f-]{36}$/);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return 42;
    });
    expect(r).toMatchObject({ value: 42, status: 'completed', recorded: true, tier: 'default' });
    expect(r.periods[0]).toMatchObject({ period: 'daily', limit: 10, used: 1, remaining: 9 });
    expect(r.measurements.cpuSource).toBe('process');
    expect(r.measurements.durationMs).toBeGreaterThanOrEqual(49);
    expect(r.measurements.memoryBytes).toBeGreaterThan(0);
    expect(await executions('fn-user')).toMatchObject([{ id: r.executionId, status: 'completed' }]);
  });

  it('a command that cannot be spawned is recorded not_started (127), its unit given back', async () => {
    const e = executor();
    const err = await e
      .run('no-such', 'shell', { command: '/nonexistent/quota-executor-test' })
      .catch((x: unknown) => x);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(await executions('no-such')).toMatchObject([{ status: 'not_started', exit_code: 127 }]);
    expect(await used('no-such')).toEqual([0, 0, 0]);
  });

  it('a child past timeoutMs is killed and recorded as timeout', async () => {
    const e = executor();
    const r = await e.run(
      'slow-child',
      'shell',
      { command: process.execPath, args: ['-e', 'setTimeout(() => {}, 20000)'] },
      { timeoutMs: 200 },
    );
    expect(r.status).toBe('timeout');
    expect(r.value).toMatchObject({ signal: 'SIGTERM', exitCode: 128 + 15 });
    expect(r.measurements.durationMs).toBeGreaterThanOrEqual(200);
    expect(await executions('slow-child')).toMatchObject([{ status: 'timeout', exit_code: 143 }]);
  });

  it('a function past timeoutMs that honours its signal returns status timeout, value undefined', async () => {
    const e = executor();
    // As timers/promises rejects (an AbortError caused by the reason), and as throwIfAborted.
    const honours = [
      async ({ signal }: { signal: AbortSignal }) => {
        await sleep(10_000, undefined, { signal });
        return 'never';
      },
      async ({ signal }: { signal: AbortSignal }) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        signal.throwIfAborted();
        return 'never';
      },
    ];
    for (const task of honours) {
      const r = await e.run('fn-timeout', 'shell', task, { timeoutMs: 100 });
      expect(r).toMatchObject({ status: 'timeout', value: undefined, recorded: true });
      expect(r.measurements.durationMs).toBeGreaterThanOrEqual(99);
    }
    expect(await executions('fn-timeout')).toMatchObject([
      { status: 'timeout', exit_code: 1 },
      { status: 'timeout', exit_code: 1 },
    ]);
  });

  it('a function past timeoutMs that still resolves gives its value; an error of its own is thrown', async () => {
    const e = executor();
    const late = await e.run('fn-late', 'shell', () => sleep(150).then(() => 'late'), {
      timeoutMs: 50,
    });
    expect(late).toMatchObject({ status: 'timeout', value: 'late' });
    const own = new Error('cleanup failed');
    const err = await e
      .run(
        'fn-late',
        'shell',
        async ({ signal }) => {
          await new Promise((resolve) => signal.addEventListener('abort', resolve));
          throw own;
        },
        { timeoutMs: 50 },
      )
      .catch((x: unknown) => x);
    expect(err).toBe(own);
    expect(await executions('fn-late')).toMatchObject([
      { status: 'timeout', exit_code: 0 },
      { status: 'timeout', exit_code: 1 },
    ]);
  });
});

describe('a dropped connection', () => {
  let relay: DroppingRelay;
  let conn: QuotaConnection;

  beforeAll(async () => {
    relay = await droppingRelay(server.address);
    conn = connect({
      address: relay.address,
      token: TEST_ADMIN_TOKEN,
      retry: { maxAttempts: 5, initialDelayMs: 20, maxDelayMs: 200 },
    });
    // The connection is up before an answer is dropped.
    await conn.quota.getQuotaStatus({ userId: 'warm-up' });
  });

  afterAll(async () => {
    conn?.close();
    await relay?.close();
  });

  it('CheckCommandQuota retried after its answer was lost is counted once', async () => {
    const e = executor({}, conn);
    const dropped = relay.dropped;
    relay.dropNextAnswer();
    const r = await e.run('drop-check', 'shell', () => 'ok');
    expect(relay.dropped).toBe(dropped + 1);
    expect(r.value).toBe('ok');
    expect(await used('drop-check')).toEqual([1, 1, 1]);
    expect(await reservations('drop-check')).toBe(1);
    expect(await executions('drop-check')).toMatchObject([
      { id: r.executionId, reservation_id: r.reservationId, status: 'completed' },
    ]);
  });

  it('RecordExecution retried after its answer was lost is stored once', async () => {
    const e = executor({}, conn);
    const dropped = relay.dropped;
    const r = await e.run('drop-record', 'shell', () => {
      // The next answer on the connection is RecordExecution's.
      relay.dropNextAnswer();
      return 'ok';
    });
    expect(relay.dropped).toBe(dropped + 1);
    expect(r.recorded).toBe(true);
    expect(await used('drop-record')).toEqual([1, 1, 1]);
    expect(await executions('drop-record')).toMatchObject([
      { id: r.executionId, reservation_id: r.reservationId, status: 'completed' },
    ]);
  });

  it('a RecordExecution that fails after its retries leaves recorded: false and the request to resend', async () => {
    const relay2 = await droppingRelay(server.address);
    const c = connect({
      address: relay2.address,
      token: TEST_ADMIN_TOKEN,
      retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
    });
    const failures: [unknown, RecordExecutionRequest][] = [];
    const e = executor({ onRecordError: (err, req) => failures.push([err, req]) }, c);
    try {
      const r = await e.run('unrecorded', 'shell', async () => {
        // The server is gone for this connection from now on.
        await relay2.close();
        return 'ran';
      });
      expect(r).toMatchObject({ value: 'ran', recorded: false, executionId: undefined });
      expect(r.recordError).toBeInstanceOf(QuotaUnavailableError);
      expect(failures).toHaveLength(1);
      expect(failures[0]![0]).toBe(r.recordError);
      const request = failures[0]![1];
      expect(request).toMatchObject({ reservationId: r.reservationId, status: 'completed' });
      // Sent again later (twice), it is stored once.
      const [a, b] = [
        await server.client.quota.recordExecution(request),
        await server.client.quota.recordExecution(request),
      ];
      expect(b.executionId).toBe(a.executionId);
      expect(await executions('unrecorded')).toMatchObject([{ id: a.executionId }]);
    } finally {
      c.close();
      await relay2.close().catch(() => undefined);
    }
  });
});

describe('host load', () => {
  it('two executors share one sampler whose reports arrive, and it stops with the last close', async () => {
    const base = loadSamplerStatus();
    expect(base).toMatchObject({ executors: 0, running: false });
    const factors: number[] = [];
    const a = new QuotaExecutor(server.client, {
      host: 'exec-load-a',
      loadIntervalMs: 200,
      onLoadReport: (f) => factors.push(f),
    });
    const b = new QuotaExecutor(server.client, { host: 'exec-load-b', loadIntervalMs: 300 });
    try {
      expect(loadSamplerStatus()).toMatchObject({ executors: 2, running: true, intervalMs: 200 });
      const w = watch(
        server.client.quota.watchLoad({
          interval: { seconds: 0, nanos: 200e6 },
          hosts: ['exec-load-a', 'exec-load-b'],
        }),
      );
      await waitFor(() => new Set(w.messages.map((m) => m.snapshot.host)).size === 2);
      w.stream.cancel();
      await w.ended;
      const started = performance.now();
      const samples = loadSamplerStatus().samples;
      await new Promise((r) => setTimeout(r, 1000));
      const ticks = loadSamplerStatus().samples - samples;
      // One timer at 200 ms: about 5 readings a second, not one per executor.
      expect(ticks).toBeGreaterThanOrEqual(2);
      expect(ticks).toBeLessThanOrEqual(Math.ceil((performance.now() - started) / 200) + 1);
      const status = loadSamplerStatus();
      expect(status.failures).toBe(base.failures);
      // Both hosts are reported at each reading.
      expect(status.reports - base.reports).toBeGreaterThanOrEqual(
        2 * (status.samples - base.samples) - 2,
      );
      expect(factors.length).toBeGreaterThan(0);

      const snapshot = w.messages.find((m) => m.snapshot.host === 'exec-load-a')!.snapshot;
      expect(snapshot.cpuPercent).toBeGreaterThanOrEqual(0);
      expect(snapshot.cpuPercent).toBeLessThanOrEqual(100);
      expect(snapshot.memoryPercent).toBeGreaterThan(0);
      expect(snapshot.diskPercent).toBeGreaterThan(0);
      const rows = await db.query<{ host: string }>(
        `SELECT host FROM host_load WHERE host IN ('exec-load-a', 'exec-load-b') ORDER BY host`,
      );
      expect(rows.rows.map((r) => r.host)).toEqual(['exec-load-a', 'exec-load-b']);

      a.close();
      expect(loadSamplerStatus()).toMatchObject({ executors: 1, running: true, intervalMs: 300 });
    } finally {
      a.close();
      b.close();
    }
    expect(loadSamplerStatus()).toMatchObject({ executors: 0, running: false });
  });

  it('a report that fails goes to the hook, not to an unhandled rejection', async () => {
    const dead = connect({ address: '127.0.0.1:1', token: TEST_ADMIN_TOKEN, retry: false });
    const errors: unknown[] = [];
    const e = new QuotaExecutor(dead, {
      host: 'exec-dead',
      loadIntervalMs: 50,
      onLoadReportError: (err) => {
        errors.push(err);
        throw new Error('a hook that throws');
      },
    });
    try {
      await waitFor(() => errors.length >= 2);
      expect(errors[0]).toBeInstanceOf(QuotaUnavailableError);
    } finally {
      e.close();
      dead.close();
    }
  });
});

describe('the example', () => {
  const example = fileURLToPath(
    new URL('../../clients/typescript/examples/executor.mjs', import.meta.url),
  );

  it('examples/executor.mjs runs against a real server, shows the denial and exits 0', async () => {
    const child = spawn(process.execPath, [example], {
      env: {
        ...process.env,
        QUOTA_ADDRESS: server.address,
        QUOTA_TOKEN: TEST_ADMIN_TOKEN,
        // This machine's load while the suite runs would throttle or refuse the example's host,
        // by its own reports or by the server's samples of itself (under os.hostname()).
        QUOTA_EXECUTOR_HOST: 'example-host',
        QUOTA_REPORT_LOAD: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // It must end by itself: a hang fails the test instead of outliving it.
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(killer);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain("stdout: 'hello from a child process");
    expect(stdout).toContain('value: 42');
    expect(stdout).toContain("value: 'the last one today'");
    expect(stdout).toContain('run 4: QuotaExceededError');
    const userId = /user (example-[0-9a-z]+)/.exec(stdout)?.[1];
    expect(userId).toBeDefined();
    expect((await executions(userId!)).map((r) => r.status)).toEqual([
      'completed',
      'completed',
      'completed',
    ]);
  });
});
