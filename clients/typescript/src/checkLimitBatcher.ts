import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { QuotaCallError, toQuotaError } from './errors.js';
import type {
  CheckLimitRequest,
  CheckLimitResponse,
  CheckLimitsResponse,
  ItemError,
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
   * whole.
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
/** One CheckLimits call of `checks` with this deadline (ms from now). */
export type SendMany = (
  checks: CheckLimitRequest[],
  deadlineMs: number,
) => Promise<CheckLimitsResponse>;

interface Waiting {
  readonly request: CheckLimitRequest;
  /** Its encoded size in a CheckLimits call, at most (see encodedSize). */
  readonly bytes: number;
  /** Date.now() by which the caller is to have its answer. */
  readonly deadline: number;
  readonly resolve: (answer: CheckLimitResponse) => void;
  readonly reject: (err: unknown) => void;
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
      // Until it is answered: an abort rejects the caller at once. Still waiting, it leaves the
      // batch; sent, its answer is dropped, as for a cancelled call (which the server may have
      // decided all the same).
      const onAbort = (): void => {
        if (this.waiting.includes(waiting)) {
          this.waiting = this.waiting.filter((w) => w !== waiting);
          this.waitingBytes -= waiting.bytes;
        }
        reject(signal!.reason);
      };
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      const waiting: Waiting = {
        request,
        bytes: encodedSize(request),
        deadline: Date.now() + deadlineMs,
        resolve: (answer) => {
          done();
          resolve(answer);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
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
    const waiting = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    for (const w of waiting) w.reject(closedError());
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waitingBytes = 0;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      // The batch has the time of its earliest caller.
      const deadlineMs = Math.max(1, Math.min(...batch.map((w) => w.deadline)) - Date.now());
      if (batch.length === 1 || this.unsupported) {
        for (const w of batch)
          this.track(this.sendOne(w.request, Math.max(1, w.deadline - Date.now()))).then(
            w.resolve,
            w.reject,
          );
        continue;
      }
      this.track(
        this.sendMany(
          batch.map((w) => w.request),
          deadlineMs,
        ),
      ).then(
        (response) => this.answer(batch, response),
        (err: unknown) => this.failed(batch, err),
      );
    }
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
  private failed(batch: readonly Waiting[], err: unknown): void {
    if (err instanceof QuotaCallError && err.code === status.UNIMPLEMENTED) {
      this.unsupported = true;
      for (const w of batch) {
        const left = Math.max(1, w.deadline - Date.now());
        this.track(this.sendOne(w.request, left)).then(w.resolve, w.reject);
      }
      return;
    }
    for (const w of batch) w.reject(err);
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
 * An upper bound of a check's encoded size in a CheckLimits call, without encoding it: each
 * string field's bytes and at most 5 bytes of tag and length, hits at most 6, the item's own tag
 * and length 4.
 */
function encodedSize(r: CheckLimitRequest): number {
  const text = [r.ip, r.userId, r.apiKey, r.resource, r.requestId, r.path, r.userAgent, r.host];
  return text.reduce((n, s) => n + (s ? Buffer.byteLength(s) + 5 : 0), 10);
}

/** The typed error a CheckLimit call would have failed with, from a check's ItemError. */
function itemError(e: ItemError): QuotaCallError {
  const metadata = new Metadata();
  if (e.field) metadata.set('invalid-field', e.field);
  if (e.retryAfter) {
    const ms = Math.ceil(Number(e.retryAfter.seconds) * 1000 + e.retryAfter.nanos / 1e6);
    // Both, as the server sends them for a single call (toStatus.ts's retryMetadata).
    metadata.set('grpc-retry-pushback-ms', String(ms));
    metadata.set('retry-after-ms', String(ms));
  }
  return callError(e.code, e.message, metadata);
}

function closedError(): QuotaCallError {
  return callError(status.CANCELLED, 'connection closed before the call was sent');
}

/** The typed error of a status made here, shaped as grpc-js shapes a call's. */
function callError(code: number, details: string, metadata = new Metadata()): QuotaCallError {
  const err = Object.assign(new Error(`${code} ${status[code] ?? ''}: ${details}`), {
    code,
    details,
    metadata,
  }) as ServiceError;
  return toQuotaError(err);
}
