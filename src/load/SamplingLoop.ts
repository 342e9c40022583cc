import type { Logger } from '../log.js';
import type { LoadSampler } from './ports.js';
import type { HostSnapshot } from './types.js';

/**
 * The one sampling loop of a process: samples every `intervalMs` (never two at once; a slow
 * sample delays the next rather than overlapping it) and hands each snapshot to every
 * subscriber. Watchers and callers read what it produced; nothing else calls the sampler.
 */
export class SamplingLoop {
  private readonly subscribers: ((snapshot: HostSnapshot) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private count = 0;

  constructor(
    private readonly sampler: LoadSampler,
    private readonly host: string,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** Samples taken since start: a test counts these to prove watchers cost no sampling. */
  get samples(): number {
    return this.count;
  }

  subscribe(fn: (snapshot: HostSnapshot) => void): void {
    this.subscribers.push(fn);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const started = performance.now();
    try {
      const figures = await this.sampler.sample();
      this.count++;
      if (this.stopped) return;
      const snapshot: HostSnapshot = { ...figures, host: this.host };
      for (const fn of this.subscribers) {
        try {
          fn(snapshot);
        } catch (err) {
          this.logger.warn({ err }, 'load subscriber failed');
        }
      }
    } catch (err) {
      this.logger.warn({ err }, 'load sampling failed');
    }
    this.schedule(Math.max(0, this.intervalMs - (performance.now() - started)));
  }
}
