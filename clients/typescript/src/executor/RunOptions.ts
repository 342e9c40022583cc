import type { PeriodQuota } from './PeriodQuota.js';

/** Options of one {@link QuotaExecutor.run}. */
export interface RunOptions {
  /**
   * Units the command consumes from each period: a whole number from 1 to 1,000.
   * @default 1
   */
  cost?: number;
  /**
   * Cancels the run. Before the command starts (during the delay) the reservation is recorded
   * as `cancelled`, which gives its units back, and run() rejects with `signal.reason`. While a
   * child process runs its process group is killed (`killSignal`, then SIGKILL after
   * `killGraceMs`), recorded as `failed` (it ran: its units are kept) and run() rejects with
   * `signal.reason`. A function sees it as `context.signal` and decides itself.
   * @default none
   */
  signal?: AbortSignal;
  /**
   * Longest time the command may run, in milliseconds, from its start (the delay not counted):
   * above 0, at most 2147483647 (Node's longest timer; a longer one would fire at once).
   * A child process is then killed like on `signal`; a function's `context.signal` aborts with a
   * `TimeoutError` and run() waits for it to settle. Either way the status is `timeout` and
   * run() returns: a function that rejected because of it gives the value undefined.
   * @default none
   */
  timeoutMs?: number;
}

/** What a function run by {@link QuotaExecutor.run} is told. */
export interface ExecutionContext {
  /** Aborts on the run's `signal` or its `timeoutMs`: stop then. */
  readonly signal: AbortSignal;
  /** The reservation this run settles; empty when the server answered degraded. */
  readonly reservationId: string;
  /** The user's tier: default, premium or enterprise. */
  readonly tier: string;
  /** Usage after this command was admitted. */
  readonly periods: readonly PeriodQuota[];
  /** When the function started (after the delay). */
  readonly startedAt: Date;
}

/** A command as a function; its result (or thrown error) is the run's. */
export type ExecutorFunction<T> = (context: ExecutionContext) => T | Promise<T>;
