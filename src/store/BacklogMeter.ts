import { performance as realPerformance } from 'node:perf_hooks';
import { OverloadedError, StoreUnavailableError } from '../errors.js';

/** A caller as the meter knows it: when it came, and how busy the loop was. */
export interface Arrival {
  /** On the performance.now() clock. */
  readonly at: number;
  /** loopBusyMs() when it came. */
  readonly busyAt: number;
}

/**
 * Tells a decision queue's own backlog from a store that does not answer, for callers the queue
 * could not serve in time. A caller waited for the service itself (shed, OverloadedError) when
 * the store answered while it waited: the store was answering, and what left the caller too
 * little time was the queue ahead of it (a burst read in one go, a batch sent late with the
 * time that was left). So too when the event loop was busy for most of its wait (an answer may
 * have been there, unread). Otherwise the store did not answer for the whole wait: an outage,
 * for the failure mode. From the queue's measured pace it also refuses at once a caller that
 * could not be served in time.
 */
export class BacklogMeter {
  /** When the store last answered. */
  private lastAnswerAt = -Infinity;
  /** Queue positions passed per ms while callers waited (moving average); 0: not measured. */
  private drainPerMs = 0;
  /** Time from sending a batch to its answer (moving average). */
  private batchMs = 0;

  constructor(
    /** The time a caller has for its answer, queueing included, in ms. */
    private readonly answerWithinMs: number,
    /** Kept back from it for the answer's way back, in ms. */
    private readonly marginMs: number,
    /**
     * Time the event loop has spent running code rather than waiting for I/O, cumulative, in ms.
     * @default performance.eventLoopUtilization().active
     */
    // perf_hooks' own object: tests' fake timers replace the global one, not this.
    private readonly loopBusyMs: () => number = () => realPerformance.eventLoopUtilization().active,
  ) {}

  arrive(now: number): Arrival {
    return { at: now, busyAt: this.loopBusyMs() };
  }

  /**
   * OverloadedError for a caller arriving behind `waiting` others that the queue's measured pace
   * cannot serve in time; null to let it queue. Only while the store answers: in an outage the
   * failure mode answers, and an unmeasured queue is given the benefit of the doubt.
   */
  refuse(now: number, waiting: number): OverloadedError | null {
    if (waiting === 0 || this.lastAnswerAt < now - this.answerWithinMs) return null;
    const expected = this.expectedMs(waiting);
    return expected > this.answerWithinMs - this.marginMs
      ? new OverloadedError(this.retryAfterMs(expected))
      : null;
  }

  /** Callers sent in a batch had waited `waitMs` in all, for `ahead` queue positions in all. */
  drained(ahead: number, waitMs: number): void {
    if (ahead > 0 && waitMs > 0) this.drainPerMs = average(this.drainPerMs, ahead / waitMs);
  }

  /** The store answered (a decision, or a refusal of an item) a batch sent at `sentAt`. */
  answered(sentAt: number): void {
    const now = performance.now();
    this.lastAnswerAt = now;
    this.batchMs = average(this.batchMs, now - sentAt);
  }

  /**
   * The error of a caller not decided in time, `waiting` others still queued: OverloadedError
   * when the wait was the service's own, else `cause` or StoreUnavailableError.
   */
  undecided(arrival: Arrival, waiting: number, cause?: unknown): unknown {
    const waited = performance.now() - arrival.at;
    // A short wait is mostly the loop running this very code: it says nothing of the store.
    const loopBound =
      waited >= this.answerWithinMs / 2 && this.loopBusyMs() - arrival.busyAt > waited / 2;
    // Strictly after: an answer in the very turn the caller came says nothing of what followed.
    if (this.lastAnswerAt > arrival.at || loopBound) {
      return new OverloadedError(this.retryAfterMs(this.expectedMs(waiting)));
    }
    return cause ?? new StoreUnavailableError(`no decision within ${this.answerWithinMs} ms`);
  }

  /** Time for a caller behind `waiting` others to be answered, at the measured pace. */
  private expectedMs(waiting: number): number {
    return (this.drainPerMs > 0 ? waiting / this.drainPerMs : 0) + this.batchMs;
  }

  /** When the backlog is expected gone, and never sooner than the timeout. */
  private retryAfterMs(expectedMs: number): number {
    return Math.ceil(Math.max(this.answerWithinMs, expectedMs));
  }
}

function average(previous: number, sample: number): number {
  return previous === 0 ? sample : previous + 0.2 * (sample - previous);
}
