import type { Executed } from './Executed.js';
import type { ExecutionContext, ExecutorFunction } from './RunOptions.js';
import { sampleRepeatedly } from './sampleRepeatedly.js';

export interface FunctionRunOptions {
  /** Ends the run early (RunOptions.signal); undefined: never. */
  readonly signal: AbortSignal | undefined;
  /** Ends the run as `timeout` after this long (RunOptions.timeoutMs); undefined: never. */
  readonly timeoutMs: number | undefined;
  /** Longest gap between two samples (ExecutorOptions.sampleIntervalMs). */
  readonly sampleIntervalMs: number;
}

/**
 * Runs `fn` and measures it. Node offers no CPU time or memory of one function: these are the
 * whole process's, its CPU time during the run (process.cpuUsage) and its peak RSS at the
 * samples, the start and the end, so anything else the process does meanwhile is counted too.
 * Never throws: a thrown error is the outcome, with status `failed` and exit code 1; past
 * `timeoutMs` the status is `timeout`, and a rejection that the timeout caused (see
 * causedByTimeout) is no error: the value is then undefined.
 */
export async function runFunction<T>(
  fn: ExecutorFunction<T>,
  context: Omit<ExecutionContext, 'signal' | 'startedAt'>,
  options: FunctionRunOptions,
): Promise<Executed<T | undefined>> {
  const controller = new AbortController();
  const { signal, timeoutMs } = options;
  const onAbort = (): void => controller.abort(signal!.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  // The clock starts before the timeout's timer: a run it ends lasts at least timeoutMs.
  const startedAt = new Date();
  const t0 = performance.now();
  const timeoutReason = new DOMException('the run took longer than timeoutMs', 'TimeoutError');
  let timedOut = false;
  const timeout =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort(timeoutReason);
        }, timeoutMs);

  let peak = process.memoryUsage.rss();
  const stopSampling = sampleRepeatedly(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, options.sampleIntervalMs);
  const cpu0 = process.cpuUsage();
  let outcome: Executed<T | undefined>['outcome'];
  let threw = false;
  try {
    outcome = { ok: true, value: await fn({ ...context, signal: controller.signal, startedAt }) };
  } catch (error) {
    threw = true;
    outcome = { ok: false, error };
  }
  const cpu = process.cpuUsage(cpu0);
  const durationMs = performance.now() - t0;
  // Settled before the timer fired: not a timeout, even if the timer is due this very tick.
  const late = timedOut;
  // A function that honours its signal rejects when the timeout aborts it: it timed out. (When
  // the run's signal aborted first, that is what it saw, and its rejection is thrown.)
  const byTimeout = controller.signal.reason === timeoutReason;
  if (late && byTimeout && !outcome.ok && causedByTimeout(outcome.error, timeoutReason))
    outcome = { ok: true, value: undefined };
  clearTimeout(timeout);
  stopSampling();
  signal?.removeEventListener('abort', onAbort);
  peak = Math.max(peak, process.memoryUsage.rss());
  const cpuTimeMs = (cpu.user + cpu.system) / 1000;
  return {
    status: late ? 'timeout' : outcome.ok ? 'completed' : 'failed',
    exitCode: threw ? 1 : 0,
    measurements: {
      startedAt,
      durationMs,
      cpuTimeMs,
      cpuPercent: durationMs > 0 ? (cpuTimeMs / durationMs) * 100 : 0,
      memoryBytes: peak,
      cpuSource: 'process',
    },
    outcome,
  };
}

/**
 * Whether a rejection after the timeout fired came from it: the timeout's own reason (what
 * `signal.throwIfAborted()` and fetch throw), an error caused by it (the AbortError of
 * timers/promises and events.once), or an AbortError or TimeoutError of a library that does not
 * pass the reason on. Any other error is the function's own, and thrown.
 */
function causedByTimeout(error: unknown, reason: DOMException): boolean {
  if (error === reason) return true;
  if (typeof error !== 'object' || error === null) return false;
  const { cause, name } = error as { cause?: unknown; name?: unknown };
  return cause === reason || name === 'AbortError' || name === 'TimeoutError';
}
