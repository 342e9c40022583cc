import { ExponentialBackoff, halfJitterGenerator, type IBackoff } from 'cockatiel';
import type { Logger } from '../log.js';
import type { Job, JobStatus } from './Job.js';
import type { LeaderLock } from './ports.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Entry {
  readonly job: Job;
  readonly status: Mutable<JobStatus>;
  timer: NodeJS.Timeout | undefined;
  /** The run in progress: resolves true when it ran, false when another replica held the lock. */
  current: Promise<boolean> | undefined;
  /** Where the backoff sequence stands since the last success; undefined after a success. */
  backoff: IBackoff<unknown> | undefined;
  /** Delay before the next run when the last run failed, in ms. */
  retryInMs: number | undefined;
}

/** How a failed run is retried. */
export interface RetryOptions {
  /**
   * The first retry's delay before jitter, in ms; each next one doubles it, up to the job's
   * interval. Jitter takes each delay anywhere between its half and itself, so replicas that
   * failed together (the database came back) do not retry together.
   * @default 1000
   */
  readonly firstRetryMs?: number;
}

/**
 * Every background job of the process, in one place: each runs on its interval, never twice at
 * once here, and a cluster-wide one only on the replica that holds its lock. A failure is
 * logged and counted, and the job is retried sooner than its interval, with exponential
 * backoff and jitter (about 1 s, 2 s, 4 s … never later than its interval); a success resets
 * the backoff. Timers are unref'd: a job never keeps the process alive.
 */
export class JobRegistry {
  private readonly entries = new Map<string, Entry>();
  private started = false;
  private readonly firstRetryMs: number;

  constructor(
    private readonly lock: LeaderLock,
    private readonly logger: Logger,
    options: RetryOptions = {},
  ) {
    this.firstRetryMs = options.firstRetryMs ?? 1000;
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
   * status. The next run is timed from this one, as after a scheduled run.
   */
  async runNow(name: string): Promise<{ ran: boolean; status: JobStatus } | undefined> {
    const e = this.entries.get(name);
    if (!e) return undefined;
    const ran = await this.run(e);
    return { ran, status: { ...e.status } };
  }

  /**
   * Stops every timer (a retry waiting for its backoff included: it is not run), waits for
   * runs in progress, then lets each job finish.
   */
  async stop(): Promise<void> {
    this.started = false;
    for (const e of this.entries.values()) {
      clearTimeout(e.timer);
      e.timer = undefined;
      e.status.nextRunAt = null;
    }
    await Promise.all([...this.entries.values()].map((e) => e.current));
    for (const e of this.entries.values()) {
      await e.job
        .finish?.()
        .catch((err: unknown) =>
          this.logger.warn({ err, job: e.job.name }, 'job did not finish cleanly'),
        );
    }
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

  /** One run at a time per job; whoever starts it times the next one from its end. */
  private run(e: Entry): Promise<boolean> {
    e.current ??= this.runOnce(e).finally(() => {
      e.current = undefined;
      if (this.started) this.schedule(e, e.retryInMs ?? e.job.intervalMs);
    });
    return e.current;
  }

  private async runOnce(e: Entry): Promise<boolean> {
    const { job, status } = e;
    const started = performance.now();
    let ran = true;
    status.running = true;
    try {
      if (job.clusterWide) {
        ran = (await this.lock.withLeaderLock(job.name, () => job.run())).ran;
        if (!ran) {
          // Another replica runs it: the next try here is a regular one, not a retry.
          status.skipped++;
          e.retryInMs = undefined;
          return false;
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
      if (ran) {
        status.runs++;
        status.lastRunAt = new Date();
        status.lastDurationMs = Math.round(performance.now() - started);
      }
    }
    return ran;
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
