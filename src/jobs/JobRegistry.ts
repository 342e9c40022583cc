import type { Logger } from '../log.js';
import type { Job, JobStatus } from './Job.js';
import type { LeaderLock } from './ports.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Entry {
  readonly job: Job;
  readonly status: Mutable<JobStatus>;
  timer: NodeJS.Timeout | undefined;
  current: Promise<void> | undefined;
}

/**
 * Every background job of the process, in one place: each runs on its interval, never twice at
 * once here, and a cluster-wide one only on the replica that holds its lock. A failure is
 * logged and counted, and the next run happens on schedule. Timers are unref'd: a job never
 * keeps the process alive.
 */
export class JobRegistry {
  private readonly entries = new Map<string, Entry>();
  private started = false;

  constructor(
    private readonly lock: LeaderLock,
    private readonly logger: Logger,
  ) {}

  register(job: Job): void {
    if (this.entries.has(job.name)) throw new Error(`job ${job.name} is registered twice`);
    this.entries.set(job.name, {
      job,
      status: {
        name: job.name,
        intervalMs: job.intervalMs,
        clusterWide: job.clusterWide,
        runs: 0,
        failures: 0,
        skipped: 0,
        lastRunAt: null,
        lastDurationMs: null,
        lastError: null,
        nextRunAt: null,
        running: false,
      },
      timer: undefined,
      current: undefined,
    });
    if (this.started) this.schedule(this.entries.get(job.name)!);
  }

  start(): void {
    this.started = true;
    for (const e of this.entries.values()) this.schedule(e);
  }

  /** Every job's status, by name. */
  list(): JobStatus[] {
    return [...this.entries.values()]
      .map((e) => ({ ...e.status }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Runs `name` now (or joins the run in progress); undefined for an unknown job. */
  async runNow(name: string): Promise<JobStatus | undefined> {
    const e = this.entries.get(name);
    if (!e) return undefined;
    await this.run(e);
    return { ...e.status };
  }

  /** Stops every timer, waits for runs in progress, then lets each job finish. */
  async stop(): Promise<void> {
    this.started = false;
    for (const e of this.entries.values()) {
      clearTimeout(e.timer);
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

  private schedule(e: Entry): void {
    clearTimeout(e.timer);
    e.status.nextRunAt = new Date(Date.now() + e.job.intervalMs);
    e.timer = setTimeout(() => {
      void this.run(e).finally(() => {
        if (this.started) this.schedule(e);
      });
    }, e.job.intervalMs);
    e.timer.unref();
  }

  private run(e: Entry): Promise<void> {
    e.current ??= this.runOnce(e).finally(() => {
      e.current = undefined;
    });
    return e.current;
  }

  private async runOnce(e: Entry): Promise<void> {
    const { job, status } = e;
    const started = performance.now();
    let ran = true;
    status.running = true;
    try {
      if (job.clusterWide) {
        ran = (await this.lock.withLeaderLock(job.name, () => job.run())).ran;
        if (!ran) {
          status.skipped++;
          return;
        }
      } else {
        await job.run();
      }
      status.lastError = null;
    } catch (err) {
      status.failures++;
      status.lastError = err instanceof Error ? err.message : String(err);
      this.logger.warn({ err, job: job.name }, 'background job failed');
    } finally {
      status.running = false;
      if (ran) {
        status.runs++;
        status.lastRunAt = new Date();
        status.lastDurationMs = Math.round(performance.now() - started);
      }
    }
  }
}
