import type { PeriodQuota } from './PeriodQuota.js';

/** How a command that started ended, as recorded. */
export type ExecutionStatus = 'completed' | 'failed' | 'timeout';

/**
 * Where the CPU figure comes from:
 * - `children`: the kernel's exact accounting of the child and the descendants it waited for
 *   (this process's children CPU time across the child's life, see runChildProcess);
 * - `sampled`: the child's own CPU time at its last sample (misses what it used after that
 *   sample, and its descendants' unless it waited for them before);
 * - `process`: this whole process's CPU time during a function (other work of the process
 *   included);
 * - `unavailable`: not on Linux (no /proc): 0.
 */
export type CpuSource = 'children' | 'sampled' | 'process' | 'unavailable';

/** What was measured of a command, as sent to RecordExecution. */
export interface ExecutionMeasurements {
  /** When it started (after the delay). */
  readonly startedAt: Date;
  /** Wall-clock time from its start to its end, in milliseconds. */
  readonly durationMs: number;
  /** CPU time used, user and system, in milliseconds (10 ms steps for a child process). */
  readonly cpuTimeMs: number;
  /** Average CPU use in percent of one core: cpuTimeMs / durationMs × 100 (above 100 when parallel). */
  readonly cpuPercent: number;
  /**
   * Peak resident memory in bytes: of a child process its own VmHWM (the kernel's high-water
   * mark) at its last sample, descendants not included, 0 if it ended before the first sample
   * (10 ms); of a function the peak RSS of this whole process seen at the samples.
   */
  readonly memoryBytes: number;
  readonly cpuSource: CpuSource;
}

/** The result of {@link QuotaExecutor.run}. */
export interface RunResult<T> {
  /** The function's result, or how the child process ended. */
  readonly value: T;
  /**
   * `completed`; `failed` for a child that exited non-zero or was killed by a signal; `timeout`
   * when `timeoutMs` passed (a function that still resolved gives its value, one that rejected
   * because of it gives undefined: see {@link FunctionRunResult}). A function that throws an
   * error of its own makes run() throw instead.
   */
  readonly status: ExecutionStatus;
  readonly measurements: ExecutionMeasurements;
  /** Whether RecordExecution stored the execution (after the connection's retries). */
  readonly recorded: boolean;
  /** The stored execution's id; undefined when not recorded. */
  readonly executionId: string | undefined;
  /** Why it was not recorded (also given to `onRecordError`); undefined when recorded. */
  readonly recordError: unknown;
  /** The reservation the record settled; empty when the server answered degraded. */
  readonly reservationId: string;
  /** The user's tier: default, premium or enterprise. */
  readonly tier: string;
  /** Usage after this command was admitted (empty when degraded). */
  readonly periods: readonly PeriodQuota[];
  /** The host's throttle factor in [0, 1] at the decision. */
  readonly throttleFactor: number;
  /** The delay the server asked for and the run waited before starting, in milliseconds. */
  readonly delayMs: number;
  /** The server could not reach its database and admitted by its failure mode (open). */
  readonly degraded: boolean;
}

/**
 * The result of running a function: its value when it completed; on `timeout` its value if it
 * still resolved, or undefined when it rejected because the timeout aborted its signal.
 */
export type FunctionRunResult<T> =
  | (RunResult<T> & { readonly status: 'completed' })
  | (RunResult<T | undefined> & { readonly status: 'timeout' });
