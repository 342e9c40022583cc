import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobRegistry } from '../../src/jobs/JobRegistry.js';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgLeaderLock } from '../../src/store/PgLeaderLock.js';
import { PgTaskRunLog } from '../../src/store/PgTaskRunLog.js';
import { freezableRelay } from '../support/freezableRelay.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer } from '../support/testServer.js';

let db: TestDatabase;
/** Two replicas' pools on one database. */
let a: Database;
let b: Database;

beforeAll(async () => {
  db = await createTestDatabase();
  const open = () =>
    new Database({ url: db.url, timeoutMs: 1000, poolSize: 3, logger: silentLogger() });
  a = open();
  b = open();
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await db?.drop();
});

/** A job body that runs until released, counting its runs. */
function gated() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const state = { runs: 0, started: new Promise<void>((resolve) => (started = resolve)) };
  return {
    state,
    release,
    run: async () => {
      state.runs++;
      started();
      await gate;
    },
  };
}

describe('job registry', () => {
  it('runs a cluster-wide job on one replica at a time and counts the other as skipped', async () => {
    const ra = new JobRegistry(new PgLeaderLock(a), silentLogger());
    const rb = new JobRegistry(new PgLeaderLock(b), silentLogger());
    const job = gated();
    const spec = { name: 'cleanup-test', intervalMs: 3_600_000, clusterWide: true, run: job.run };
    ra.register(spec);
    rb.register(spec);
    const first = ra.runNow('cleanup-test');
    await job.state.started;
    // Replica B asks while A holds the lock: it does not wait, it skips.
    const second = await rb.runNow('cleanup-test');
    expect(second).toMatchObject({ ran: false, status: { runs: 0, skipped: 1, running: false } });
    job.release();
    expect(await first).toMatchObject({
      ran: true,
      status: { runs: 1, skipped: 0, failures: 0, lastError: null },
    });
    expect(job.state.runs).toBe(1);
    // The lock was released: B runs it now.
    expect(await rb.runNow('cleanup-test')).toMatchObject({
      ran: true,
      status: { runs: 1, skipped: 1 },
    });
    expect(job.state.runs).toBe(2);
  });

  it('runs a per-replica job on every replica at once', async () => {
    const ra = new JobRegistry(new PgLeaderLock(a), silentLogger());
    const rb = new JobRegistry(new PgLeaderLock(b), silentLogger());
    const job = gated();
    const spec = { name: 'flush-test', intervalMs: 3_600_000, clusterWide: false, run: job.run };
    ra.register(spec);
    rb.register(spec);
    const both = Promise.all([ra.runNow('flush-test'), rb.runNow('flush-test')]);
    await expect.poll(() => job.state.runs).toBe(2);
    job.release();
    expect((await both).map((s) => s?.status.runs)).toEqual([1, 1]);
  });

  it('counts a failure with its message, clears it on success, and never runs a job twice at once', async () => {
    const registry = new JobRegistry(new PgLeaderLock(a), silentLogger());
    let fail = true;
    let concurrent = 0;
    let most = 0;
    registry.register({
      name: 'flaky',
      intervalMs: 3_600_000,
      clusterWide: false,
      async run() {
        concurrent++;
        most = Math.max(most, concurrent);
        await new Promise((r) => setTimeout(r, 20));
        concurrent--;
        if (fail) throw new Error('disk on fire');
      },
    });
    const [s1, s2] = await Promise.all([registry.runNow('flaky'), registry.runNow('flaky')]);
    expect(most).toBe(1);
    expect(s1).toMatchObject({
      ran: true,
      status: { runs: 1, failures: 1, consecutiveFailures: 1, lastError: 'disk on fire' },
    });
    expect(s2).toMatchObject({ ran: true, status: { runs: 1, failures: 1 } });
    fail = false;
    expect(await registry.runNow('flaky')).toMatchObject({
      ran: true,
      status: { runs: 2, failures: 1, consecutiveFailures: 0, lastError: null },
    });
    expect(await registry.runNow('unknown')).toBeUndefined();
    expect(() =>
      registry.register({ name: 'flaky', intervalMs: 1, clusterWide: false, run: async () => {} }),
    ).toThrow(/registered twice/);
  });

  it('lists every background job of a running server from its one registry', async () => {
    const server = await startTestServer(db.url);
    try {
      expect(server.app.jobs().map((j) => [j.name, j.clusterWide])).toEqual([
        ['attack-detection', true],
        ['database-probe', false],
        ['expired-reservations-cleanup', true],
        ['expired-state-cleanup', true],
        ['health', false],
        ['hourly-rollups', true],
        ['load-history-flush', false],
        ['retention-cleanup', true],
        ['stats-flush', false],
        ['token-last-used', false],
        ['violations-flush', false],
      ]);
    } finally {
      await server.stop();
    }
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a cluster-wide job on two replicas with a run log', () => {
  it('runs about once per interval between them, and the other takes over when one stops', async () => {
    const INTERVAL = 1000;
    const ran: string[] = [];
    const registry = (db: Database, replica: string) => {
      const r = new JobRegistry(new PgLeaderLock(db), silentLogger(), {
        runLog: new PgTaskRunLog(db, replica),
      });
      r.register({
        name: 'shared-test',
        intervalMs: INTERVAL,
        clusterWide: true,
        run: async () => void ran.push(replica),
      });
      return r;
    };
    const ra = registry(a, 'replica-a');
    const rb = registry(b, 'replica-b');
    // Half an interval apart: without the log, each would run at its own turn, twice per
    // interval in all (their locks never overlap).
    ra.start();
    await sleep(INTERVAL / 2);
    rb.start();
    await sleep(5 * INTERVAL);
    const shared = () => [ra, rb].map((r) => r.list()[0]!);
    const [sa, sb] = shared();
    // Five intervals: about five runs in all, not ten.
    expect(ran.length).toBeGreaterThanOrEqual(4);
    expect(ran.length).toBeLessThanOrEqual(6);
    expect(sa!.runs + sb!.runs).toBe(ran.length);
    expect(sa!.skipped + sb!.skipped).toBeGreaterThanOrEqual(3);
    expect(sa!.failures + sb!.failures).toBe(0);
    const row = await db.query<{ replica: string; ago: number }>(
      `SELECT replica, extract(epoch FROM clock_timestamp() - last_run_at)::float8 AS ago
         FROM task_runs WHERE name = 'shared-test'`,
    );
    expect(row.rows).toHaveLength(1);
    expect(row.rows[0]!.replica).toBe(ran.at(-1));
    expect(row.rows[0]!.ago).toBeLessThan((2 * INTERVAL) / 1000);

    // An operator's run always runs, however recent the last one.
    const before = ran.length;
    expect(await rb.runNow('shared-test')).toMatchObject({ ran: true });
    expect(await ra.runNow('shared-test')).toMatchObject({ ran: true });
    expect(ran.length).toBe(before + 2);

    // The replica that ran it stops: the other runs it from its next turns on.
    const runner = ran.at(-1) === 'replica-a' ? ra : rb;
    const other = runner === ra ? rb : ra;
    await runner.stop();
    const otherRuns = other.list()[0]!.runs;
    await sleep(4 * INTERVAL);
    expect(other.list()[0]!.runs - otherRuns).toBeGreaterThanOrEqual(2);
    await other.stop();
  });
});

describe('a cluster-wide job when the database freezes', () => {
  it('ends its run within the bounds, drops its lock, and the registry still stops', async () => {
    const relay = await freezableRelay(db.url);
    const frozenDb = new Database({
      url: relay.url,
      timeoutMs: 250,
      poolSize: 4,
      logger: silentLogger(),
    });
    const direct = new PgLeaderLock(a);
    try {
      // The admin bound of frozenDb is 2 s: the job's statement, then the unlock, give up after
      // it. Stop waits a second for runs, and a second for each finish.
      const registry = new JobRegistry(new PgLeaderLock(frozenDb), silentLogger(), {
        stopGraceMs: 1000,
        finishTimeoutMs: 1000,
      });
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      registry.register({
        name: 'frozen-test',
        intervalMs: 3_600_000,
        clusterWide: true,
        async run() {
          entered();
          await sleep(200);
          await frozenDb.query('SELECT 1');
        },
        // A final flush, which meets the frozen database too.
        finish: () => frozenDb.query('SELECT 1').then(() => undefined),
      });
      const run = registry.runNow('frozen-test');
      await inside;
      relay.freeze();
      // Held by the frozen replica's session meanwhile.
      expect(await direct.withLeaderLock('frozen-test', async () => 'taken')).toEqual({
        ran: false,
      });
      const stopped = registry.stop().then(() => 'stopped');
      expect(await Promise.race([stopped, sleep(6000).then(() => 'stop hangs')])).toBe('stopped');
      const answer = await Promise.race([run, sleep(10_000).then(() => undefined)]);
      expect(answer).toMatchObject({
        ran: true,
        status: { runs: 1, failures: 1, running: false },
      });
      // Its statement met the freeze on a pooled connection (no answer) or on a new one (the
      // connect timed out): either way the database's silence, not something else.
      expect(answer!.status.lastError).toMatch(/did not answer|database unreachable/);
      // The unlock did not answer either: its connection was destroyed, and with it the lock.
      await expect
        .poll(() => direct.withLeaderLock('frozen-test', async () => 'taken'), { timeout: 5000 })
        .toEqual({ ran: true, value: 'taken' });
    } finally {
      relay.thaw();
      await frozenDb.close().catch(() => undefined);
      await relay.close();
    }
  });
});
