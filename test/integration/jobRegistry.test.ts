import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobRegistry } from '../../src/jobs/JobRegistry.js';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgLeaderLock } from '../../src/store/PgLeaderLock.js';
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
