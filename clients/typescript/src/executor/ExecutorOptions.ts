import type { RecordExecutionRequest } from '../gen/quota/v1/quota_service.js';

/** Options of {@link QuotaExecutor}. */
export interface ExecutorOptions {
  /**
   * This host's name: CheckCommandQuota applies its throttle factor, RecordExecution stores it,
   * and ReportLoad reports its load under it. At most 256 bytes.
   * @default os.hostname()
   */
  host?: string;
  /**
   * Report this host's load with ReportLoad every `loadIntervalMs`, so that the server throttles
   * this host by its real load. All executors of a process share one sampler (one timer, one
   * reading of the host per interval), whatever copies of this package (ES module, CommonJS,
   * bundled) created them; it stops when the last of them is closed. Close every executor: one
   * dropped without close() is reported until the garbage collector takes it.
   * @default true
   */
  reportLoad?: boolean;
  /**
   * Time between two load reports, in milliseconds; the shared sampler reports at the shortest
   * interval its executors ask for. The server forgets a host silent for 10 of its own
   * intervals (QUOTA_LOAD_INTERVAL_MS, 1 s by default), so keep this well below that. At most
   * 2147483647 (Node's longest timer).
   * @default 1000
   */
  loadIntervalMs?: number;
  /**
   * Longest time between two samples of a running command's CPU time and peak memory, in
   * milliseconds. Samples start 10 ms after the start and double up to this. At most 2147483647.
   * @default 100
   */
  sampleIntervalMs?: number;
  /**
   * Called when RecordExecution failed (after the connection's retries), with the error and the
   * request, which can be sent again later as it is: its request_id makes it count once. The
   * run itself still returns (`recorded: false`) or throws the function's own error.
   * @default emits a process warning (`process.on('warning')`, printed on stderr by default)
   */
  onRecordError?: (error: unknown, request: RecordExecutionRequest) => void;
  /**
   * Called with the throttle factor the server answered to each load report of this host.
   * @default none
   */
  onLoadReport?: (throttleFactor: number) => void;
  /**
   * Called when sampling or reporting this host's load failed; the sampler goes on at the next
   * interval. Never an unhandled rejection.
   * @default a process warning at the first failure after a success, then silence until one
   * succeeds again
   */
  onLoadReportError?: (error: unknown) => void;
}
