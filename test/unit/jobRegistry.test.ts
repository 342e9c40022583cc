import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Job } from '../../src/jobs/Job.js';
import { JobRegistry } from '../../src/jobs/JobRegistry.js';
import type { LeaderLock, TaskRunLog } from '../../src/jobs/ports.js';

// The registry's timing, on fake timers: the clock the registry reads (Date.now, setTimeout)
// is the one the test moves, so no test sleeps or depends on the machine's speed.

const T0 = new Date('2026-03-02T10:00:00.000Z').getTime();
const INTERVAL = 60_000;

/** A lock held by nobody else: every run here takes it (the registry's own lock logic). */
const freeLock: LeaderLock = {
  async withLeaderLock(_name, work) {
    return { ran: true, value: await work() };
  },
};

/** A pino logger keeping each warn line, parsed. */
function memoryLogger() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[0]) },
  );
  return { logger, lines };
}

/** A job that fails while `failing` is true, counting its runs. */
function flaky(intervalMs = INTERVAL): Job & { failing: boolean; runs: number } {
  const job = {
    name: 'flaky',
    intervalMs,
    clusterWide: false,
    failing: true,
    runs: 0,
    async run() {
      job.runs++;
      if (job.failing) throw new Error(`failure ${job.runs}`);
    },
  };
  return job;
}

/** Milliseconds from now to the job's next run. */
const dueIn = (r: JobRegistry) => r.list()[0]!.nextRunAt!.getTime() - Date.now();

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('job registry retries', () => {
  it('retries a failed run after 1 s, 2 s, 4 s … capped at the interval, and a success resets it', async () => {
    // Jitter at its top: each delay is just under its base (halfway down at random() = 0).
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const { logger } = memoryLogger();
    const registry = new JobRegistry(freeLock, logger);
    const job = flaky(10_000);
    registry.register(job);
    registry.start();
    expect(dueIn(registry)).toBe(10_000);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(job.runs).toBe(1);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const status = registry.list()[0]!;
      expect(status).toMatchObject({ consecutiveFailures: i + 1, failures: i + 1, runs: i + 1 });
      const delay = dueIn(registry);
      delays.push(delay);
      // Not a millisecond before the retry is due…
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(job.runs).toBe(i + 1);
      // …and at it.
      await vi.advanceTimersByTimeAsync(1);
      expect(job.runs).toBe(i + 2);
    }
    // 1000·2ⁿ with the top of the jitter, then the interval caps the base (jitter still applies).
    expect(delays).toEqual([999, 1999, 3999, 7999, 9999, 9999]);

    job.failing = false;
    await vi.advanceTimersByTimeAsync(dueIn(registry));
    expect(job.runs).toBe(8);
    expect(registry.list()[0]).toMatchObject({
      runs: 8,
      failures: 7,
      consecutiveFailures: 0,
      lastError: null,
    });
    expect(dueIn(registry)).toBe(10_000);

    // A new failure starts the sequence again from its first step.
    job.failing = true;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(registry.list()[0]).toMatchObject({ consecutiveFailures: 1, failures: 8 });
    expect(dueIn(registry)).toBe(999);
    await registry.stop();
  });

  it('jitters each delay between half its base and its base', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const low = new JobRegistry(freeLock, memoryLogger().logger);
    const job = flaky();
    low.register(job);
    low.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      delays.push(dueIn(low));
      await vi.advanceTimersByTimeAsync(dueIn(low));
    }
    expect(delays).toEqual([500, 1000, 2000, 4000]);
    await low.stop();

    // With real randomness, every delay stays within [base / 2, base).
    vi.mocked(Math.random).mockRestore();
    const seen = new Set<number>();
    for (let trial = 0; trial < 20; trial++) {
      const registry = new JobRegistry(freeLock, memoryLogger().logger);
      registry.register(flaky());
      registry.start();
      await vi.advanceTimersByTimeAsync(INTERVAL);
      for (const base of [1000, 2000, 4000]) {
        const delay = dueIn(registry);
        seen.add(delay);
        expect(delay).toBeGreaterThanOrEqual(base / 2);
        expect(delay).toBeLessThan(base);
        await vi.advanceTimersByTimeAsync(delay);
      }
      await registry.stop();
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('logs each failure with the job, its message, the failures in a row and the retry delay', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { logger, lines } = memoryLogger();
    const registry = new JobRegistry(freeLock, logger, { firstRetryMs: 2000 });
    const job = flaky();
    registry.register(job);
    registry.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    await vi.advanceTimersByTimeAsync(1000);
    expect(lines).toMatchObject([
      {
        level: 40,
        msg: 'background job failed',
        job: 'flaky',
        consecutiveFailures: 1,
        retryInMs: 1000,
        err: { message: 'failure 1' },
      },
      { job: 'flaky', consecutiveFailures: 2, retryInMs: 2000, err: { message: 'failure 2' } },
    ]);
    expect(registry.list()[0]).toMatchObject({ lastError: 'failure 2' });
    await registry.stop();
  });

  it('times the next run from a run asked for now: a failed one is retried with backoff', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const registry = new JobRegistry(freeLock, memoryLogger().logger);
    const job = flaky();
    registry.register(job);
    registry.start();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(await registry.runNow('flaky')).toMatchObject({
      ran: true,
      status: { runs: 1, consecutiveFailures: 1 },
    });
    expect(dueIn(registry)).toBe(500);
    job.failing = false;
    expect(await registry.runNow('flaky')).toMatchObject({
      ran: true,
      status: { runs: 2, consecutiveFailures: 0 },
    });
    expect(dueIn(registry)).toBe(INTERVAL);
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(job.runs).toBe(2);
    await registry.stop();
  });

  it('does not retry a cluster-wide job sooner while another replica holds its lock', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    let held = false;
    const lock: LeaderLock = {
      async withLeaderLock(_name, work) {
        return held ? { ran: false } : { ran: true, value: await work() };
      },
    };
    const registry = new JobRegistry(lock, memoryLogger().logger);
    const job = { ...flaky(), clusterWide: true };
    registry.register(job);
    registry.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(dueIn(registry)).toBe(500);
    held = true;
    await vi.advanceTimersByTimeAsync(500);
    expect(registry.list()[0]).toMatchObject({ runs: 1, skipped: 1, consecutiveFailures: 1 });
    expect(dueIn(registry)).toBe(INTERVAL);
    await registry.stop();
  });

  it('stops without waiting for a pending retry, which then never runs', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const registry = new JobRegistry(freeLock, memoryLogger().logger);
    const job = flaky();
    const finished: string[] = [];
    registry.register({
      ...job,
      run: () => job.run(),
      finish: async () => void finished.push('flaky'),
    });
    registry.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(registry.list()[0]).toMatchObject({ consecutiveFailures: 1 });
    // No timer is advanced: a stop() that waited for the 500 ms backoff would never resolve.
    await registry.stop();
    expect(Date.now()).toBe(T0 + INTERVAL);
    expect(finished).toEqual(['flaky']);
    expect(registry.list()[0]!.nextRunAt).toBeNull();
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(job.runs).toBe(1);
  });

  it('lets a run in progress finish on stop, then the job finishes, and schedules nothing after', async () => {
    const registry = new JobRegistry(freeLock, memoryLogger().logger);
    const events: string[] = [];
    let release!: () => void;
    registry.register({
      name: 'slow',
      intervalMs: INTERVAL,
      clusterWide: false,
      async run() {
        events.push('run started');
        await new Promise<void>((resolve) => (release = resolve));
        events.push('run ended');
      },
      async finish() {
        events.push('finished');
      },
    });
    registry.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(registry.list()[0]).toMatchObject({ running: true });
    let stopped = false;
    const stopping = registry.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(events).toEqual(['run started', 'run ended', 'finished']);
    expect(registry.list()[0]).toMatchObject({ runs: 1, running: false, nextRunAt: null });
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(events).toHaveLength(3);
  });
});

describe('job registry stop', () => {
  it('abandons a run still in progress after the grace, with a warning, and bounds each finish', async () => {
    const { logger, lines } = memoryLogger();
    const registry = new JobRegistry(freeLock, logger, {
      stopGraceMs: 3000,
      finishTimeoutMs: 2000,
    });
    const never = () => new Promise<void>(() => undefined);
    const events: string[] = [];
    registry.register({ name: 'stuck', intervalMs: INTERVAL, clusterWide: true, run: never });
    registry.register({
      name: 'flush',
      intervalMs: INTERVAL,
      clusterWide: false,
      run: async () => undefined,
      finish: async () => void events.push('flushed'),
    });
    registry.register({
      name: 'slow-finish',
      intervalMs: 2 * INTERVAL,
      clusterWide: false,
      run: async () => undefined,
      finish: never,
    });
    registry.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(registry.list().find((j) => j.name === 'stuck')).toMatchObject({ running: true });
    let stopped = false;
    const stopping = registry.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(2999);
    expect(stopped).toBe(false);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(lines).toMatchObject([
      { msg: 'background jobs still running at stop: abandoned', jobs: ['stuck'], graceMs: 3000 },
    ]);
    expect(events).toEqual(['flushed']);
    await vi.advanceTimersByTimeAsync(1999);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(Date.now()).toBe(T0 + INTERVAL + 5000);
    expect(lines.slice(1)).toMatchObject([
      { msg: 'job did not finish in time: abandoned', job: 'slow-finish', timeoutMs: 2000 },
    ]);
  });

  it('waits no longer than the runs and finishes take', async () => {
    const registry = new JobRegistry(freeLock, memoryLogger().logger);
    const job = flaky();
    job.failing = false;
    registry.register(job);
    registry.start();
    await registry.stop();
    expect(Date.now()).toBe(T0);
  });
});

describe('job registry with a run log', () => {
  /** A run log on the fake clock, as the store's clock; `failRecord` fails its writes. */
  function memoryRunLog() {
    const last = new Map<string, number>();
    const log: TaskRunLog & { failRecord: boolean; last: Map<string, number> } = {
      failRecord: false,
      last,
      async sinceLastRun(name) {
        const at = last.get(name);
        return at === undefined ? null : Date.now() - at;
      },
      async recordRun(name) {
        if (log.failRecord) throw new Error('store away');
        last.set(name, Date.now());
      },
    };
    return log;
  }

  /** A cluster-wide job (interval 60 s: a slack of 6 s) that counts its runs. */
  function shared() {
    const job = {
      name: 'shared',
      intervalMs: INTERVAL,
      clusterWide: true,
      runs: 0,
      failing: false,
      async run() {
        job.runs++;
        if (job.failing) throw new Error('failed');
      },
    };
    return job;
  }

  it('skips a scheduled run while another replica ran the job less than its interval (less the slack) ago', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const runLog = memoryRunLog();
    const registry = new JobRegistry(freeLock, memoryLogger().logger, { runLog });
    const job = shared();
    registry.register(job);
    registry.start();
    // Another replica ran it 53.999 s before this one's turn: within 60 s less 6 s.
    runLog.last.set('shared', T0 + INTERVAL - 54_000 + 1);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(job.runs).toBe(0);
    expect(registry.list()[0]).toMatchObject({ runs: 0, skipped: 1, consecutiveFailures: 0 });
    // The next turn is an interval later, as after a run.
    expect(dueIn(registry)).toBe(INTERVAL);
    // 54 s ago at the next turn: it runs, and records its run.
    runLog.last.set('shared', T0 + 2 * INTERVAL - 54_000);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(job.runs).toBe(1);
    expect(runLog.last.get('shared')).toBe(T0 + 2 * INTERVAL);
    // Its own run an interval ago does not hold back its next turn.
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(job.runs).toBe(2);
    expect(registry.list()[0]).toMatchObject({ runs: 2, skipped: 1 });
    await registry.stop();
  });

  it('runs a run asked for now however recent the last one, and records it', async () => {
    const runLog = memoryRunLog();
    const registry = new JobRegistry(freeLock, memoryLogger().logger, { runLog });
    const job = shared();
    registry.register(job);
    runLog.last.set('shared', T0 - 1);
    expect(await registry.runNow('shared')).toMatchObject({ ran: true, status: { runs: 1 } });
    expect(job.runs).toBe(1);
    expect(runLog.last.get('shared')).toBe(T0);
  });

  it('does not record a failed run, so that its retry runs; a record that fails is only a warning', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const runLog = memoryRunLog();
    const { logger, lines } = memoryLogger();
    const registry = new JobRegistry(freeLock, logger, { runLog });
    const job = shared();
    job.failing = true;
    registry.register(job);
    registry.start();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(runLog.last.has('shared')).toBe(false);
    expect(registry.list()[0]).toMatchObject({ runs: 1, failures: 1 });
    job.failing = false;
    runLog.failRecord = true;
    await vi.advanceTimersByTimeAsync(dueIn(registry));
    expect(job.runs).toBe(2);
    expect(registry.list()[0]).toMatchObject({ runs: 2, failures: 1, consecutiveFailures: 0 });
    expect(lines.at(-1)).toMatchObject({
      msg: 'cluster-wide run not recorded',
      job: 'shared',
      err: { message: 'store away' },
    });
    await registry.stop();
  });

  it('leaves per-replica jobs alone', async () => {
    const runLog = memoryRunLog();
    const registry = new JobRegistry(freeLock, memoryLogger().logger, { runLog });
    const job = { ...shared(), clusterWide: false };
    registry.register(job);
    registry.start();
    runLog.last.set('shared', T0 + INTERVAL);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(registry.list()[0]).toMatchObject({ runs: 1, skipped: 0 });
    await registry.stop();
  });
});
