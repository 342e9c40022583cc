import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { QuotaConnection } from '../connect.js';
import type {
  CheckCommandQuotaResponse,
  RecordExecutionRequest,
} from '../gen/quota/v1/quota_service.js';
import { abortableDelay } from './abortableDelay.js';
import type { ChildOutcome, ChildProcessSpec } from './ChildProcessSpec.js';
import { checkChildSpec } from './checkChildSpec.js';
import { checkRunOptions, timerMs } from './checkOptions.js';
import { deniedError } from './deniedError.js';
import { durationToMs, msToDuration } from './durations.js';
import type { Executed } from './Executed.js';
import type { ExecutorOptions } from './ExecutorOptions.js';
import { joinLoadSampler } from './hostLoadSampler.js';
import { toPeriodQuotas } from './PeriodQuota.js';
import { runChildProcess } from './runChildProcess.js';
import { runFunction } from './runFunction.js';
import type { ExecutorFunction, RunOptions } from './RunOptions.js';
import type { ExecutionStatus, FunctionRunResult, RunResult } from './RunResult.js';

/** RecordExecution's bounds: CPU percent and memory bytes past them are refused. */
const MAX_CPU_PERCENT = 102_400;
const MAX_MEMORY_BYTES = Number.MAX_SAFE_INTEGER;

/**
 * Takes the load-sampler place of an executor dropped without close(): the sampler reaches an
 * executor only through a WeakRef (see the constructor), so it can be collected.
 */
const dropped = new FinalizationRegistry<() => void>((leave) => leave());

/**
 * Runs users' commands under their command quotas: CheckCommandQuota, the delay the server asks
 * for, the command (a function or a child process) measured, RecordExecution. Meanwhile it
 * reports its host's load (see {@link ExecutorOptions.reportLoad}). Close it when done: until
 * then its host is reported (an executor dropped without close() stops being reported only once
 * the garbage collector takes it, which may be never). The connection stays the caller's.
 *
 * Each run uses two fresh request ids (crypto.randomUUID), one per call, so that the
 * connection's retries of a call whose answer was lost are counted once.
 */
export class QuotaExecutor {
  /** The host name sent with every call. */
  readonly host: string;
  private readonly sampleIntervalMs: number;
  private readonly onRecordError: NonNullable<ExecutorOptions['onRecordError']>;
  private readonly onLoadReport: ExecutorOptions['onLoadReport'];
  private readonly onLoadReportError: ExecutorOptions['onLoadReportError'];
  /** The default warning comes once per series of failures: a success ends the series. */
  private loadFailing = false;
  private readonly leaveSampler: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly connection: QuotaConnection,
    options: ExecutorOptions = {},
  ) {
    this.host = options.host ?? hostname();
    this.sampleIntervalMs = timerMs(options.sampleIntervalMs ?? 100, 'sampleIntervalMs');
    this.onRecordError = options.onRecordError ?? warnRecordError;
    this.onLoadReport = options.onLoadReport;
    this.onLoadReportError = options.onLoadReportError;
    const loadIntervalMs = timerMs(options.loadIntervalMs ?? 1000, 'loadIntervalMs');
    if (options.reportLoad ?? true) {
      // The process-wide sampler must not keep this executor (nor its hooks, which may refer to
      // it) alive: it reaches it weakly, and one that was collected is taken out (dropped).
      const self = new WeakRef<QuotaExecutor>(this);
      this.leaveSampler = joinLoadSampler({
        connection,
        host: this.host,
        intervalMs: loadIntervalMs,
        onReport: (factor) => self.deref()?.loadReported(factor),
        onError: (error) => self.deref()?.loadReportFailed(error),
      });
      dropped.register(this, this.leaveSampler, this);
    }
  }

  /**
   * Runs `task` for `userId` as a command of `commandType` if the user's quota admits it.
   *
   * A denial throws before anything runs and consumes nothing: {@link QuotaExceededError},
   * {@link SystemOverloadedError}, {@link QuotaDecisionUnavailableError} (or their base
   * {@link CommandDeniedError}); a failed CheckCommandQuota throws its QuotaCallError (a
   * reservation the server made for an answer that never arrived expires with
   * QUOTA_RESERVATION_TTL_S, counted). Once admitted it waits the server's delay, runs the
   * task, and records the execution in all cases: `cancelled` (units given back) when the
   * signal aborted before the start, `not_started` when a child process could not be spawned,
   * else `completed`, `failed` or `timeout` with the measurements. Then it returns the result,
   * or throws what the task threw (the spawn error, the signal's reason; an error supervising
   * a running child, after its process group was killed). A function that
   * rejects because its `timeoutMs` aborted its signal returns: status `timeout`, value
   * undefined. A RecordExecution that fails after the connection's retries does not fail the
   * run: the result says `recorded: false` and `onRecordError` is called.
   *
   * The task and the options are checked before anything is asked for: a bad one throws a
   * TypeError or RangeError naming the field, and consumes nothing.
   */
  run<T>(
    userId: string,
    commandType: string,
    task: ExecutorFunction<T>,
    options?: RunOptions,
  ): Promise<FunctionRunResult<T>>;
  run(
    userId: string,
    commandType: string,
    task: ChildProcessSpec,
    options?: RunOptions,
  ): Promise<RunResult<ChildOutcome>>;
  async run<T>(
    userId: string,
    commandType: string,
    task: ExecutorFunction<T> | ChildProcessSpec,
    options: RunOptions = {},
  ): Promise<RunResult<T | ChildOutcome | undefined>> {
    if (this.closed) throw new Error('QuotaExecutor is closed');
    if (typeof userId !== 'string' || typeof commandType !== 'string')
      throw new TypeError('run: `userId` and `commandType` must be strings');
    // Checked and copied now: nothing is asked for a run that could not be run or supervised.
    const child = typeof task === 'function' ? undefined : checkChildSpec(task);
    const { cost, signal, timeoutMs } = checkRunOptions(options);
    signal?.throwIfAborted();
    const host = this.host;
    // Not cancelled by the signal: an answer lost to a cancel would leave a reservation that
    // could not be given back. An abort meanwhile is seen right after.
    const decision = await this.connection.quota.checkCommandQuota({
      userId,
      commandType,
      host,
      requestId: randomUUID(),
      cost,
    });
    if (!decision.allowed) throw deniedError(decision, { userId, commandType, host });

    const base = {
      reservationId: decision.reservationId,
      requestId: randomUUID(),
      userId,
      commandType,
      host,
    };
    const delayMs = durationToMs(decision.delay);
    try {
      await abortableDelay(delayMs, signal);
    } catch (reason) {
      await this.record({
        ...base,
        startedAt: undefined,
        duration: undefined,
        cpuPercent: 0,
        memoryBytes: 0,
        exitCode: 0,
        status: 'cancelled',
      });
      throw reason;
    }

    const runOptions = { signal, timeoutMs, sampleIntervalMs: this.sampleIntervalMs };
    const periods = toPeriodQuotas(decision.periods);
    const startedAt = new Date();
    let executed: Executed<T | ChildOutcome | undefined>;
    try {
      executed =
        typeof task === 'function'
          ? await runFunction(
              task,
              { reservationId: decision.reservationId, tier: decision.tier, periods },
              runOptions,
            )
          : await runChildProcess(child!, runOptions);
    } catch (error) {
      // Runners never throw; should one, the admitted run is still recorded, as failed.
      executed = unmeasured(error, startedAt);
    }
    const m = executed.measurements;
    const recorded = await this.record({
      ...base,
      startedAt: m.startedAt,
      duration: msToDuration(m.durationMs),
      cpuPercent: Math.min(MAX_CPU_PERCENT, Math.max(0, m.cpuPercent)),
      memoryBytes: Math.min(MAX_MEMORY_BYTES, Math.max(0, Math.round(m.memoryBytes))),
      exitCode: executed.exitCode,
      status: executed.status,
    });
    if (!executed.outcome.ok) throw executed.outcome.error;
    return {
      value: executed.outcome.value,
      // not_started always comes with the spawn error, thrown above.
      status: executed.status as ExecutionStatus,
      measurements: m,
      ...recorded,
      ...decisionFigures(decision, delayMs),
      periods,
    };
  }

  /**
   * Stops this executor's load reports (the process's sampler stops with the last executor).
   * Runs in progress finish and are recorded; later runs throw. The connection stays open.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    dropped.unregister(this);
    this.leaveSampler?.();
  }

  private loadReported(factor: number): void {
    this.loadFailing = false;
    this.onLoadReport?.(factor);
  }

  private loadReportFailed(error: unknown): void {
    if (this.onLoadReportError) this.onLoadReportError(error);
    else if (!this.loadFailing) warnLoadReportError(error);
    this.loadFailing = true;
  }

  private async record(
    request: RecordExecutionRequest,
  ): Promise<Pick<RunResult<unknown>, 'recorded' | 'executionId' | 'recordError'>> {
    try {
      const { executionId } = await this.connection.quota.recordExecution(request);
      return { recorded: true, executionId, recordError: undefined };
    } catch (error) {
      try {
        this.onRecordError(error, request);
      } catch {
        // A hook that throws must not turn a run that ran into a failed one.
      }
      return { recorded: false, executionId: undefined, recordError: error };
    }
  }
}

function decisionFigures(decision: CheckCommandQuotaResponse, delayMs: number) {
  return {
    reservationId: decision.reservationId,
    tier: decision.tier,
    throttleFactor: decision.throttleFactor,
    delayMs,
    degraded: decision.degraded,
  };
}

/** A run whose runner threw: recorded failed, with nothing measured. */
function unmeasured(error: unknown, startedAt: Date): Executed<never> {
  return {
    status: 'failed',
    exitCode: 1,
    measurements: {
      startedAt,
      durationMs: 0,
      cpuTimeMs: 0,
      cpuPercent: 0,
      memoryBytes: 0,
      cpuSource: 'unavailable',
    },
    outcome: { ok: false, error },
  };
}

function warnRecordError(error: unknown, request: RecordExecutionRequest): void {
  process.emitWarning(
    `RecordExecution failed for user "${request.userId}" (request_id ${request.requestId}): ${String(error)}`,
    { type: 'QuotaExecutorWarning', detail: 'The execution was not recorded.' },
  );
}

function warnLoadReportError(error: unknown): void {
  process.emitWarning(`ReportLoad failed: ${String(error)}`, {
    type: 'QuotaExecutorWarning',
    detail: 'Load reports go on every interval; this warning comes again after one succeeds.',
  });
}
