import { ExponentialBackoff, halfJitterGenerator, type IBackoff } from 'cockatiel';
import type { Logger } from '../log.js';
import type { Job, JobStatus } from './Job.js';
import type { LeaderLock, TaskRunLog } from './ports.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Entry {
  readonly job: Job;
  readonly status: Mutable<JobStatus>;
  timer: NodeJS.Timeout | undefined;
  /** The run in progress. */
  current: Promise<Outcome> | undefined;
  /** Where the backoff sequence stands since the last success; undefined after a success. */
  backoff: IBackoff<unknown> | undefined;
  /** Delay before the next run when the last run failed, in ms. */
  retryInMs: number | undefined;
}

/**
 * How a run ended: it ran (failed or not), another replica held a cluster-wide job's lock, or
 * (a scheduled run only) another replica ran the job less than its interval ago.
 */
type Outcome = 'ran' | 'held' | 'recent';

/** How failed runs are retried, cluster-wide runs shared out, and the registry stopped. */
export interface RegistryOptions {
  /**
   * The first retry's delay before jitter, in ms; each next one doubles it, up to the job's
   * interval. Jitter takes each delay anywhere between its half and itself, so replicas that
   * failed together (the database came back) do not retry together.
   * @default 1000
   */
  readonly firstRetryMs?: number;
  /**
   * When each cluster-wide job last ran on any replica. With it, a scheduled run of one is
   * skipped when another run ended less than its interval ago (less a slack of a tenth of the
   * interval, at most a minute), so that N replicas run it about once per interval between them;
   * a run asked for with runNow always runs. Without it, every scheduled run that gets the lock
   * runs.
   */
  readonly runLog?: TaskRunLog;
  /**
   * How long stop() waits for runs in progress before it abandons them (with a warning), in ms.
   * @default 5000
   */
  readonly stopGraceMs?: number;
  /** How long stop() waits for each job's finish(), in ms. @default 5000 */
  readonly finishTimeoutMs?: number;
}

/**
 * Every background job of the process, in one place: each runs on its interval, never twice at
 * once here, and a cluster-wide one only on the replica that holds its lock. A failure is
 * logged and counted, and the job is retried sooner than its interval, with exponential
 * backoff and jitter (about 1 s, 2 s, 4 s … never later than its interval); a success resets
 * the backoff. Timers are unref'd: a job never keeps the process alive, and stop() is bounded
 * (see RegistryOptions) so that a run stuck on a frozen database cannot hold up shutdown.
 */
export class JobRegistry {
  private readonly entries = new Map<string, Entry>();
  private started = false;
  private readonly firstRetryMs: number;
  private readonly runLog: TaskRunLog | undefined;
  private readonly stopGraceMs: number;
  private readonly finishTimeoutMs: number;

  constructor(
    private readonly lock: LeaderLock,
    private readonly logger: Logger,
    options: RegistryOptions = {},
  ) {
    this.firstRetryMs = options.firstRetryMs ?? 1000;
    this.runLog = options.runLog;
    this.stopGraceMs = options.stopGraceMs ?? 5000;
    this.finishTimeoutMs = options.finishTimeoutMs ?? 5000;
  }

  register(job: Job): void {
    if (this.entries.has(job.name)) throw new Error(`job ${job.name} is registered twice`);
    const entry: Entry = {
      job,
      status: {
        name: job.name,
        intervalMs: job.intervalMs,
        clusterWide: job.clusterWide,
        runs: 0,
        failures: 0,
        consecutiveFailures: 0,
        skipped: 0,
        lastRunAt: null,
        lastDurationMs: null,
        lastError: null,
        nextRunAt: null,
        running: false,
      },
      timer: undefined,
      current: undefined,
      backoff: undefined,
      retryInMs: undefined,
    };
    this.entries.set(job.name, entry);
    if (this.started) this.schedule(entry, job.intervalMs);
  }

  start(): void {
    this.started = true;
    for (const e of this.entries.values()) this.schedule(e, e.job.intervalMs);
  }

  /** Every job's status, by name. */
  list(): JobStatus[] {
    return [...this.entries.values()]
      .map((e) => ({ ...e.status }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * Runs `name` now (or joins the run in progress) and resolves when it has ended, with whether
   * it ran here (false: another replica held a cluster-wide job's lock) and the job's status
   * after it; undefined for an unknown job. A failed run resolves too: its error is in the
   * status. Unlike a scheduled run, it runs however recently another replica ran the job. The
   * next run is timed from this one, as after a scheduled run.
   */
  async runNow(name: string): Promise<{ ran: boolean; status: JobStatus } | undefined> {
    const e = this.entries.get(name);
    if (!e) return undefined;
    let outcome = await this.run(e, true);
    // Joined a scheduled run that found the job run recently elsewhere: asked for, it runs.
    if (outcome === 'recent') outcome = await this.run(e, true);
    return { ran: outcome === 'ran', status: { ...e.status } };
  }

  /**
   * Stops every timer (a retry waiting for its backoff included: it is not run) and waits for
   * runs in progress, up to the stop grace: runs still going then are abandoned with a
   * warning (a database that does not answer). Then lets every job finish, each within the
   * finish bound. Always resolves.
   */
  async stop(): Promise<void> {
    this.started = false;
    for (const e of this.entries.values()) {
      clearTimeout(e.timer);
      e.timer = undefined;
      e.status.nextRunAt = null;
    }
    const running = [...this.entries.values()].filter((e) => e.current);
    const ended = await within(
      this.stopGraceMs,
      Promise.all(running.map((e) => e.current)).then(() => undefined),
    );
    if (!ended) {
      this.logger.warn(
        {
          jobs: running.filter((e) => e.current).map((e) => e.job.name),
          graceMs: this.stopGraceMs,
        },
        'background jobs still running at stop: abandoned',
      );
    }
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        if (!e.job.finish) return;
        const finishing = e.job.finish();
        try {
          if (!(await within(this.finishTimeoutMs, finishing)))
            this.logger.warn(
              { job: e.job.name, timeoutMs: this.finishTimeoutMs },
              'job did not finish in time: abandoned',
            );
        } catch (err) {
          this.logger.warn({ err, job: e.job.name }, 'job did not finish cleanly');
        }
      }),
    );
  }

  private schedule(e: Entry, delayMs: number): void {
    clearTimeout(e.timer);
    e.status.nextRunAt = new Date(Date.now() + delayMs);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      void this.run(e);
    }, delayMs);
    e.timer.unref();
  }

  /**
   * One run at a time per job; whoever starts it times the next one from its end. `asked`: an
   * operator's run, not a scheduled one.
   */
  private run(e: Entry, asked = false): Promise<Outcome> {
    e.current ??= this.runOnce(e, asked).finally(() => {
      e.current = undefined;
      if (this.started) this.schedule(e, e.retryInMs ?? e.job.intervalMs);
    });
    return e.current;
  }

  private async runOnce(e: Entry, asked: boolean): Promise<Outcome> {
    const { job, status } = e;
    const started = performance.now();
    let outcome: Outcome = 'ran';
    status.running = true;
    try {
      if (job.clusterWide) {
        const locked = await this.lock.withLeaderLock(job.name, () => this.runShared(job, asked));
        outcome = locked.ran ? locked.value : 'held';
        if (outcome !== 'ran') {
          // Another replica runs it: the next try here is a regular one, not a retry.
          status.skipped++;
          e.retryInMs = undefined;
          return outcome;
        }
      } else {
        await job.run();
      }
      status.lastError = null;
      status.consecutiveFailures = 0;
      e.backoff = undefined;
      e.retryInMs = undefined;
    } catch (err) {
      status.failures++;
      status.consecutiveFailures++;
      status.lastError = err instanceof Error ? err.message : String(err);
      e.backoff = (e.backoff ?? this.backoffOf(job)).next(undefined);
      e.retryInMs = Math.min(e.backoff.duration, job.intervalMs);
      this.logger.warn(
        {
          err,
          job: job.name,
          consecutiveFailures: status.consecutiveFailures,
          retryInMs: this.started ? e.retryInMs : null,
        },
        'background job failed',
      );
    } finally {
      status.running = false;
      if (outcome === 'ran') {
        status.runs++;
        status.lastRunAt = new Date();
        status.lastDurationMs = Math.round(performance.now() - started);
      }
    }
    return outcome;
  }

  /**
   * A cluster-wide job's run, under its lock: a scheduled one is skipped when another replica's
   * run ended less than the interval (less the slack) ago by the store's clock. A run that
   * succeeded is recorded; one that failed is not, so that the retry (here or elsewhere) runs.
   */
  private async runShared(job: Job, asked: boolean): Promise<Outcome> {
    if (this.runLog && !asked) {
      const since = await this.runLog.sinceLastRun(job.name);
      const slack = Math.min(job.intervalMs / 10, 60_000);
      if (since !== null && since < job.intervalMs - slack) return 'recent';
    }
    await job.run();
    // The work is done whatever the record does: at worst another replica repeats it.
    await this.runLog
      ?.recordRun(job.name)
      .catch((err: unknown) =>
        this.logger.warn({ err, job: job.name }, 'cluster-wide run not recorded'),
      );
    return 'ran';
  }

  /** Delays of firstRetryMs·2ⁿ with half jitter, capped at the job's interval. */
  private backoffOf(job: Job): ExponentialBackoff<unknown> {
    return new ExponentialBackoff({
      initialDelay: this.firstRetryMs,
      maxDelay: job.intervalMs,
      exponent: 2,
      generator: halfJitterGenerator,
    });
  }
}

/** Whether `work` settled within `ms` (its rejection is thrown); it is not waited for after. */
async function within(ms: number, work: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
