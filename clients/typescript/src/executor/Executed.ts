import type { ExecutionMeasurements, ExecutionStatus } from './RunResult.js';

/** What running a command gave, before it is recorded. Runners never throw: errors are here. */
export interface Executed<T> {
  /** `not_started`: a child process that could not be spawned (its units are given back). */
  readonly status: ExecutionStatus | 'not_started';
  readonly exitCode: number;
  readonly measurements: ExecutionMeasurements;
  /** The value, or the error run() rethrows once the execution is recorded. */
  readonly outcome:
    { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };
}
