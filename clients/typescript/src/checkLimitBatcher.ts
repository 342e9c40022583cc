import { status } from '@grpc/grpc-js';
import { callError, closedError, deadlineError, itemError } from './batchErrors.js';
import { QuotaCallError } from './errors.js';
import type {
  CheckLimitRequest,
  CheckLimitResponse,
  CheckLimitsResponse,
} from './gen/quota/v1/quota_service.js';

/** Micro-batching of a connection's CheckLimit calls into CheckLimits calls. */
export interface BatchingOptions {
  /**
   * How long a call made while others are in flight waits for more to join its batch, in
   * milliseconds. A call on an idle connection never waits: it goes at once.
   * @default 1
   */
  windowMs?: number;
  /**
   * Checks per CheckLimits call at most (the server takes up to 1,000); a batch this full goes
   * at once, without waiting out the window.
   * @default 100
   */
  maxBatch?: number;
  /**
   * Encoded checks per CheckLimits call at most, in bytes: a batch that would grow past it goes
   * first. Keep it under the server's QUOTA_MAX_MESSAGE_BYTES, which refuses a larger call as a
   * whole (its callers are then sent one by one, a call each).
   * @default 49152 (48 KiB, under the server's default 64 KiB)
   */
  maxBatchBytes?: number;
}

/** One CheckLimit call of `request` with this deadline (ms from now); `signal` cancels it. */
export type SendOne = (
  request: CheckLimitRequest,
  deadlineMs: number,
  signal?: AbortSignal,
) => Promise<CheckLimitResponse>;
/**
 * One CheckLimits call of `checks` with this deadline (ms from now); `signal` cancels it.
 * `onHeaders` is called when the server's response headers arrive: a call refused before its
 * handler ran has none (gRPC sends its status alone), one the server answered has them.
 */
export type SendMany = (
  checks: CheckLimitRequest[],
  deadlineMs: number,
  signal: AbortSignal,
  onHeaders: () => void,
) => Promise<CheckLimitsResponse>;

interface Waiting {
  readonly request: CheckLimitRequest;
  /** Its encoded size in a CheckLimits call, at most (see encodedSize). */
  readonly bytes: number;
  /** Date.now() by which the caller is to have its answer. */
  readonly deadline: number;
  /** Its deadline as the caller gave it, in ms. */
  readonly deadlineMs: number;
  /** Settle the caller, once: later answers are dropped. */
  readonly resolve: (answer: CheckLimitResponse) => void;
  readonly reject: (err: unknown) => void;
  readonly settled: () => boolean;
  /** Set once it is sent: tells the call that this caller no longer waits for it. */
  leave?: () => void;
}

const MAX_CHECKS = 1000;

/**
 * Gathers the CheckLimit calls of one connection: a call on an idle connection (none in flight)
 * goes at once as CheckLimit, so batching costs no latency when calls do not overlap; calls made
 * while others are in flight wait up to `windowMs` (or until `maxBatch` wait) and go as one
 * CheckLimits call, each caller getting its own answer or its own typed error. One attempt per
 * submit: retries are the caller's (only calls with a request_id are retried, each on its own,
 * so a retry joins a later batch). A server without CheckLimits (UNIMPLEMENTED) gets CheckLimit
 * calls from then on.
 *
 * Each batched caller keeps its own deadline, on a timer of its own: past it, that caller alone
 * fails with QuotaDeadlineExceededError, and is not sent if it still waits. The CheckLimits call
 * has the latest deadline of its callers, so that no caller's deadline cuts the others short;
 * callers with very different deadlines share a batch all the same, since none waits on another's
 * (and a call whose callers have all gone is cancelled).
 */
export class CheckLimitBatcher {
  private readonly windowMs: number;
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private waiting: Waiting[] = [];
  /** Encoded size of the waiting checks, bounded by maxBatchBytes. */
  private waitingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  /** The server answered CheckLimits UNIMPLEMENTED: an older server. */
  private unsupported = false;
  private closed = false;

  constructor(
    private readonly sendOne: SendOne,
    private readonly sendMany: SendMany,
    options: BatchingOptions,
  ) {
    this.windowMs = options.windowMs ?? 1;
    this.maxBatch = options.maxBatch ?? 100;
    this.maxBatchBytes = options.maxBatchBytes ?? 49_152;
    if (!Number.isInteger(this.maxBatchBytes) || this.maxBatchBytes < 1024)
      throw new RangeError(
        `batching.maxBatchBytes must be an integer of at least 1024, got ${this.maxBatchBytes}`,
      );
    if (!(this.windowMs >= 0 && this.windowMs <= 1000))
      throw new RangeError(`batching.windowMs must be from 0 to 1000, got ${this.windowMs}`);
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1 || this.maxBatch > MAX_CHECKS)
      throw new RangeError(
        `batching.maxBatch must be an integer from 1 to ${MAX_CHECKS}, got ${this.maxBatch}`,
      );
  }

  /** One attempt of `request`; an abort of `signal` rejects with its reason. */
  submit(
    request: CheckLimitRequest,
    deadlineMs: number,
    signal: AbortSignal | undefined,
  ): Promise<CheckLimitResponse> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(closedError());
    if (this.unsupported || (this.inFlight === 0 && this.waiting.length === 0))
      return this.track(this.sendOne(request, deadlineMs, signal));
    return new Promise((resolve, reject) => {
      let settled = false;
      // Until it is answered, its abort or deadline settles the caller at once. Still waiting, it
      // leaves the batch; sent, its answer is dropped, as for a cancelled call (which the server
      // may have decided all the same).
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const at = this.waiting.indexOf(waiting);
        if (at >= 0) {
          this.waiting.splice(at, 1);
          this.waitingBytes -= waiting.bytes;
        }
        waiting.leave?.();
        return true;
      };
      const waiting: Waiting = {
        request,
        bytes: encodedSize(request),
        deadline: Date.now() + deadlineMs,
        deadlineMs,
        resolve: (answer) => {
          if (settle()) resolve(answer);
        },
        reject: (err) => {
          if (settle()) reject(err);
        },
        settled: () => settled,
      };
      const onAbort = (): void => waiting.reject(signal!.reason);
      const timer = setTimeout(() => waiting.reject(deadlineError(deadlineMs)), deadlineMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.waitingBytes + waiting.bytes > this.maxBatchBytes) this.flush();
      this.waiting.push(waiting);
      this.waitingBytes += waiting.bytes;
      if (this.waiting.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.windowMs);
    });
  }

  /**
   * Stops batching: callers still waiting, never sent, are rejected at once with
   * QuotaCancelledError (one of the two errors close() documents for calls in flight, and the
   * one no retry policy takes up), and so is every later submit. Calls sent run on.
   */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of [...this.waiting]) w.reject(closedError());
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // Past its deadline (its timer not run yet on a busy loop), a caller is not sent.
    const now = Date.now();
    for (const w of this.waiting.filter((w) => w.deadline <= now))
      w.reject(deadlineError(w.deadlineMs));
    this.waitingBytes = 0;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      if (batch.length === 1 || this.unsupported) batch.forEach((w) => this.sendAlone(w));
      else this.sendBatch(batch);
    }
  }

  private sendAlone(w: Waiting): void {
    const cancel = new AbortController();
    w.leave = () => cancel.abort();
    this.track(this.sendOne(w.request, Math.max(1, w.deadline - Date.now()), cancel.signal)).then(
      w.resolve,
      w.reject,
    );
  }

  private sendBatch(batch: Waiting[]): void {
    const latest = batch.reduce((t, w) => Math.max(t, w.deadline), 0);
    const cancel = new AbortController();
    let open = batch.length;
    for (const w of batch)
      w.leave = () => {
        if (--open === 0) cancel.abort();
      };
    let answered = false;
    this.track(
      this.sendMany(
        batch.map((w) => w.request),
        Math.max(1, latest - Date.now()),
        cancel.signal,
        () => (answered = true),
      ),
    ).then(
      (response) => this.answer(batch, response),
      (err: unknown) => this.failed(batch, err, answered),
    );
  }

  private answer(batch: readonly Waiting[], response: CheckLimitsResponse): void {
    // Results go by position: with one too many or too few, none can be trusted to be whose.
    if (response.results.length !== batch.length) {
      const details = `CheckLimits answered ${response.results.length} results for ${batch.length} checks`;
      for (const w of batch) w.reject(callError(status.INTERNAL, details));
      return;
    }
    batch.forEach((w, i) => {
      const result = response.results[i]?.result;
      if (result?.$case === 'response') w.resolve(result.value);
      else if (result?.$case === 'error') w.reject(itemError(result.value));
      else w.reject(callError(status.INTERNAL, `CheckLimits answered no result for check ${i}`));
    });
  }

  /** The call failed as a whole: every caller gets its typed error (and may retry). */
  private failed(batch: readonly Waiting[], err: unknown, answered: boolean): void {
    const open = batch.filter((w) => !w.settled());
    const unimplemented = err instanceof QuotaCallError && err.code === status.UNIMPLEMENTED;
    if (unimplemented) this.unsupported = true;
    if (unimplemented || refusedForSize(err, answered)) {
      // Nothing of it was decided: each caller alone gets what it would have got unbatched.
      open.forEach((w) => this.sendAlone(w));
      return;
    }
    for (const w of open) w.reject(err);
  }

  private track<T>(call: Promise<T>): Promise<T> {
    this.inFlight += 1;
    const done = (): void => {
      this.inFlight -= 1;
    };
    call.then(done, done);
    return call;
  }
}

/**
 * Whether a CheckLimits call was refused for its own size, before anything of it was decided:
 * RESOURCE_EXHAUSTED without a retry hint (the server's shedding always sends one, toStatus.ts's
 * retryMetadata) and without response headers. A request over the server's
 * QUOTA_MAX_MESSAGE_BYTES is refused as its length prefix arrives, before any handler, with the
 * status alone; an answer too large for this client (its own max_receive_message_length) is also
 * RESOURCE_EXHAUSTED without a hint, but comes after headers, its checks decided: sending them
 * again would count them twice.
 */
function refusedForSize(err: unknown, answered: boolean): boolean {
  return (
    err instanceof QuotaCallError &&
    err.code === status.RESOURCE_EXHAUSTED &&
    !answered &&
    err.metadata.get('grpc-retry-pushback-ms').length === 0 &&
    err.metadata.get('retry-after-ms').length === 0
  );
}

/**
 * An upper bound of a check's encoded size in a CheckLimits call, without encoding it: each
 * string field's bytes and at most 5 bytes of tag and length, hits at most 6, the item's own tag
 * and length 4.
 */
function encodedSize(r: CheckLimitRequest): number {
  const text = [r.ip, r.userId, r.apiKey, r.resource, r.requestId, r.path, r.userAgent, r.host];
  return text.reduce((n, s) => n + (s ? Buffer.byteLength(s) + 5 : 0), 10);
}
