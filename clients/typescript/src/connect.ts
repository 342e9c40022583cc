import {
  ChannelCredentials,
  credentials as grpcCredentials,
  Metadata,
  status,
  type CallOptions as GrpcCallOptions,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import * as adminMessages from './gen/quota/v1/admin_service.js';
import { AdminServiceClient } from './gen/quota/v1/admin_service.js';
import * as quotaMessages from './gen/quota/v1/quota_service.js';
import { QuotaServiceClient } from './gen/quota/v1/quota_service.js';
import type { DeepPartial } from './gen/quota/v1/types.js';
import { toQuotaError } from './errors.js';
import { closedError } from './batchErrors.js';
import type { RetryPolicy } from 'cockatiel';
import { retryPolicy, type RetryOptions } from './retryPolicy.js';
import { CheckLimitBatcher, type BatchingOptions } from './checkLimitBatcher.js';

/** Files of a TLS connection; each a PEM buffer or string. */
export interface TlsOptions {
  /**
   * CA certificates the server's certificate must chain to.
   * @default the system's roots
   */
  ca?: Buffer | string;
  /**
   * Client certificate, for a server that asks for one (QUOTA_TLS_CLIENT_CA); needs `key`.
   * @default none
   */
  cert?: Buffer | string;
  /**
   * Private key of `cert`.
   * @default none
   */
  key?: Buffer | string;
  /**
   * Name the server's certificate must carry, when it differs from the address's host.
   * @default the host of `address`
   */
  serverName?: string;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** The server, as `host:port` (or any gRPC target such as `dns:///quota:50051`). Required. */
  address: string;
  /**
   * Bearer token sent as `authorization` metadata on every call (a client, viewer or admin
   * token; see CreateToken).
   * @default none: calls fail with QuotaUnauthenticatedError
   */
  token?: string;
  /**
   * TLS: `true` for the system's roots, files for a private CA or mutual TLS, or grpc-js
   * credentials of your own.
   * @default false (plaintext)
   */
  tls?: boolean | TlsOptions | ChannelCredentials;
  /**
   * Deadline of each unary call (of each attempt when retried), in milliseconds; every unary
   * call has one. A call past it fails with QuotaDeadlineExceededError.
   * @default 5000
   */
  deadlineMs?: number;
  /**
   * Retries of calls that carry a `request_id` (CheckLimit, CheckCommandQuota,
   * RecordExecution, …), on UNAVAILABLE and DEADLINE_EXCEEDED only, with exponential backoff
   * and jitter; the server answers a repeated request_id with its first answer, so a retry is
   * never counted twice. Calls without a request_id are never retried. `false` turns it off.
   * @default { maxAttempts: 4, initialDelayMs: 50, maxDelayMs: 2000 }
   */
  retry?: RetryOptions | false;
  /**
   * Wait for the connection to be ready (within the deadline) instead of failing at once with
   * QuotaUnavailableError while the server cannot be reached.
   * @default false
   */
  waitForReady?: boolean;
  /**
   * Micro-batching of CheckLimit: calls made while others of this connection are in flight wait
   * up to `windowMs` and go together as one CheckLimits call, each caller getting its own
   * answer or its own typed error, and its retries as without batching. On by default because
   * it costs nothing when calls do not overlap (a call on an idle connection goes at once, as
   * CheckLimit) and under load it carries many decisions per call, which is what bounds a
   * busy client's and server's throughput. Calls with their own `metadata` go alone. A server
   * without CheckLimits gets CheckLimit calls. `false` sends every call as CheckLimit.
   * @default { windowMs: 1, maxBatch: 100, maxBatchBytes: 49152 }
   */
  batching?: BatchingOptions | false;
  /**
   * grpc-js channel options (keepalive, message sizes, …).
   * @default {}
   */
  channelOptions?: ClientOptions;
}

/** Options of one unary call. */
export interface CallOptions {
  /**
   * Deadline of this call (of each attempt), in milliseconds.
   * @default the connection's `deadlineMs`
   */
  deadlineMs?: number;
  /**
   * Cancels the call (and its retries); the promise then rejects with `signal.reason`.
   * @default none
   */
  signal?: AbortSignal;
  /**
   * Extra metadata; `authorization` is set from the connection's token.
   * @default none
   */
  metadata?: Metadata;
  /**
   * Retries of this call.
   * @default the connection's `retry`
   */
  retry?: RetryOptions | false;
}

/** Options of one server stream. */
export interface StreamOptions {
  /**
   * Deadline of the whole stream, in milliseconds.
   * @default none: a stream lasts until cancelled
   */
  deadlineMs?: number;
  /**
   * Ends the stream; iteration then stops without an error.
   * @default none
   */
  signal?: AbortSignal;
  /**
   * Extra metadata; `authorization` is set from the connection's token.
   * @default none
   */
  metadata?: Metadata;
}

/** A server stream: iterate it with `for await`; `cancel()` (or `break`) ends it. */
export interface QuotaStream<T> extends AsyncIterable<T> {
  cancel(): void;
}

/**
 * A request as the caller gives it: any field left out takes its proto3 default (the client
 * completes it with the message's `fromPartial` before sending).
 */
export type PartialRequest<T> = DeepPartial<T>;

type Last<T extends unknown[]> = T extends [...unknown[], infer L] ? L : never;
type Unary<F> = F extends (request: infer Req, ...rest: infer Rest) => ClientUnaryCall
  ? Last<Rest> extends (error: ServiceError | null, response: infer Res) => void
    ? (request: PartialRequest<Req>, options?: CallOptions) => Promise<Res>
    : never
  : never;
type Stream<F> = F extends (request: infer Req, ...rest: never[]) => ClientReadableStream<infer Res>
  ? (request: PartialRequest<Req>, options?: StreamOptions) => QuotaStream<Res>
  : never;

/** A service's methods: unary ones return promises, server streams async iterables. */
export type Promisified<C> = {
  [K in keyof C as C[K] extends (...args: never[]) => unknown ? K : never]: C[K] extends (
    ...args: never[]
  ) => ClientReadableStream<unknown>
    ? Stream<C[K]>
    : Unary<C[K]>;
};

/** A connection to a quota-authority server (or a balancer in front of replicas). */
export interface QuotaConnection {
  readonly quota: Promisified<QuotaServiceClient>;
  readonly admin: Promisified<AdminServiceClient>;
  /** The raw generated clients, for what the promise API does not cover. */
  readonly raw: { readonly quota: QuotaServiceClient; readonly admin: AdminServiceClient };
  /**
   * Closes the channel: unary calls in flight fail (QuotaUnavailableError or
   * QuotaCancelledError) and open streams end, as if cancelled. checkLimit calls still waiting
   * for a batch, never sent, fail at once with QuotaCancelledError, as does every call made
   * after close().
   */
  close(): void;
}

const DEFAULT_DEADLINE_MS = 5000;

type AnyMethod = (...args: unknown[]) => unknown;

/** Connects to a server; the channel connects lazily, on the first call. */
export function connect(options: ConnectOptions): QuotaConnection {
  if (typeof options?.address !== 'string' || options.address === '')
    throw new TypeError('connect: address must be a non-empty string such as "127.0.0.1:50051"');
  const deadlineMs = positiveMs(options.deadlineMs ?? DEFAULT_DEADLINE_MS, 'deadlineMs');
  const channelOptions: ClientOptions = { ...options.channelOptions };
  const tls = options.tls;
  if (tls && typeof tls === 'object' && !(tls instanceof ChannelCredentials) && tls.serverName)
    channelOptions['grpc.ssl_target_name_override'] = tls.serverName;
  const creds = channelCredentials(tls);
  const quota = new QuotaServiceClient(options.address, creds, channelOptions);
  // One channel for both services.
  const admin = new AdminServiceClient(options.address, creds, {
    ...channelOptions,
    channelOverride: quota.getChannel(),
  });
  const retry = options.retry ?? {};
  const defaults: Defaults = {
    closed: false,
    streams: new Set(),
    token: options.token,
    deadlineMs,
    retry,
    // Built once (and its options checked here, at connect).
    retryPolicy: retryPolicy(retry === false ? {} : retry),
    waitForReady: options.waitForReady ?? false,
  };
  const quotaMethods = promisify(quota, quotaMessages, defaults);
  const batching = options.batching ?? {};
  const batcher =
    batching === false
      ? undefined
      : new CheckLimitBatcher(
          (request, ms, signal) =>
            unaryAttempt<quotaMessages.CheckLimitResponse>(
              quota,
              quota.checkLimit,
              request,
              ms,
              { signal },
              defaults,
            ),
          (checks, ms, signal, onHeaders) =>
            unaryAttempt<quotaMessages.CheckLimitsResponse>(
              quota,
              quota.checkLimits,
              { checks },
              ms,
              { signal, onHeaders },
              defaults,
            ),
          batching,
        );
  if (batcher) {
    quotaMethods.checkLimit = (request, opts = {}) =>
      callUnary(
        quota,
        quota.checkLimit as AnyMethod,
        quotaMessages.CheckLimitRequest.fromPartial(request ?? {}),
        opts,
        defaults,
        // A call with metadata of its own cannot share a call: it goes alone.
        opts.metadata
          ? undefined
          : (request, deadlineMs, signal) =>
              batcher.submit(request as quotaMessages.CheckLimitRequest, deadlineMs, signal),
      ) as Promise<quotaMessages.CheckLimitResponse>;
  }
  return {
    quota: quotaMethods,
    admin: promisify(admin, adminMessages, defaults),
    raw: { quota, admin },
    close() {
      // Calls made after this get QuotaCancelledError, not grpc-js's plain "channel closed".
      defaults.closed = true;
      // grpc-js's close() lets open streams run on; they end here.
      for (const cancel of [...defaults.streams]) cancel();
      // Calls waiting for a batch were never sent: grpc-js does not know them.
      batcher?.close();
      quota.close();
    },
  };
}

interface Defaults {
  /** Whether close() was called. */
  closed: boolean;
  /** Cancels of the connection's open streams. */
  streams: Set<() => void>;
  token: string | undefined;
  deadlineMs: number;
  retry: RetryOptions | false;
  retryPolicy: RetryPolicy;
  waitForReady: boolean;
}

type MessageFns = { fromPartial?: (object: unknown) => unknown };

function promisify<C extends object>(
  client: C,
  messages: Record<string, unknown>,
  defaults: Defaults,
): Promisified<C> {
  const service = (client.constructor as { service?: Record<string, { responseStream: boolean }> })
    .service;
  const methods: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(service ?? {})) {
    // ts-proto's service keys are the lower-camel method names the client has.
    const method = (client as Record<string, AnyMethod>)[name];
    if (typeof method !== 'function') continue;
    // Requests are named <Method>Request (buf lint's RPC_REQUEST_STANDARD_NAME).
    const type = messages[`${name[0]!.toUpperCase()}${name.slice(1)}Request`] as MessageFns;
    if (typeof type?.fromPartial !== 'function')
      throw new Error(`no request message for ${name}: the generated code and client disagree`);
    const complete = (request: unknown): unknown => type.fromPartial!(request ?? {});
    methods[name] = def.responseStream
      ? (request: unknown, opts: StreamOptions = {}) =>
          openStream(client, method, complete(request), opts, defaults)
      : (request: unknown, opts: CallOptions = {}) =>
          callUnary(client, method, complete(request), opts, defaults);
  }
  return methods as Promisified<C>;
}

function metadataFor(
  extra: Metadata | undefined,
  token: string | undefined,
  waitForReady: boolean,
): Metadata {
  const metadata = extra ? extra.clone() : new Metadata();
  // grpc-js takes wait-for-ready as a metadata option, not a call option.
  metadata.setOptions({ ...metadata.getOptions(), waitForReady });
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** One attempt of a unary call: resolves with the response, rejects with the typed error. */
function unaryAttempt<Res>(
  client: object,
  method: unknown,
  request: unknown,
  deadlineMs: number,
  opts: (Pick<CallOptions, 'metadata' | 'signal'> & { onHeaders?: () => void }) | undefined,
  defaults: Defaults,
): Promise<Res> {
  const signal = opts?.signal;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    if (defaults.closed) {
      reject(closedError());
      return;
    }
    const callOptions: Partial<GrpcCallOptions> = { deadline: Date.now() + deadlineMs };
    const onAbort = (): void => call.cancel();
    const call = (method as AnyMethod).call(
      client,
      request,
      metadataFor(opts?.metadata, defaults.token, defaults.waitForReady),
      callOptions,
      (err: ServiceError | null, response: Res) => {
        signal?.removeEventListener('abort', onAbort);
        if (!err) resolve(response);
        else if (signal?.aborted) reject(signal.reason);
        else reject(toQuotaError(err));
      },
    ) as ClientUnaryCall;
    if (opts?.onHeaders) call.on('metadata', opts.onHeaders);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sends one attempt of `request` (by default a call of its own). */
type Send = (
  request: unknown,
  deadlineMs: number,
  signal: AbortSignal | undefined,
) => Promise<unknown>;

async function callUnary(
  client: object,
  method: AnyMethod,
  request: unknown,
  opts: CallOptions,
  defaults: Defaults,
  send?: Send,
): Promise<unknown> {
  const deadlineMs =
    opts.deadlineMs === undefined ? defaults.deadlineMs : positiveMs(opts.deadlineMs, 'deadlineMs');
  const attempt = (signal: AbortSignal | undefined): Promise<unknown> =>
    send
      ? send(request, deadlineMs, signal)
      : unaryAttempt(
          client,
          method,
          request,
          deadlineMs,
          { metadata: opts.metadata, signal },
          defaults,
        );
  const retry = opts.retry ?? defaults.retry;
  if (retry === false || !carriesRequestId(request)) return attempt(opts.signal);
  const policy = retry === defaults.retry ? defaults.retryPolicy : retryPolicy(retry);
  // The caller's signal, not the policy's: without one the policy hands every call the same
  // never-aborted signal, and a listener per call in flight would pile up on it.
  return untilAborted(
    policy.execute(() => attempt(opts.signal), opts.signal),
    opts.signal,
  );
}

/** The policy's backoff sleep does not listen to the signal: an abort there ends the wait too. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function carriesRequestId(request: unknown): boolean {
  const id = (request as { requestId?: unknown } | null)?.requestId;
  return typeof id === 'string' && id !== '';
}

function openStream(
  client: object,
  method: AnyMethod,
  request: unknown,
  opts: StreamOptions,
  defaults: Defaults,
): QuotaStream<unknown> {
  // Aborted already: no call at all (one cancelled in the tick it starts can leave its socket).
  if (opts.signal?.aborted) return { [Symbol.asyncIterator]: async function* () {}, cancel() {} };
  if (defaults.closed) {
    return {
      // eslint-disable-next-line require-yield -- a stream that fails before its first message
      [Symbol.asyncIterator]: async function* () {
        throw closedError();
      },
      cancel() {},
    };
  }
  const callOptions: Partial<GrpcCallOptions> = {};
  if (opts.deadlineMs !== undefined)
    callOptions.deadline = Date.now() + positiveMs(opts.deadlineMs, 'deadlineMs');
  const call = method.call(
    client,
    request,
    metadataFor(opts.metadata, defaults.token, defaults.waitForReady),
    callOptions,
  ) as ClientReadableStream<unknown>;
  let cancelled = false;
  const release = (): void => {
    defaults.streams.delete(cancel);
    opts.signal?.removeEventListener('abort', cancel);
  };
  function cancel(): void {
    if (cancelled) return;
    cancelled = true;
    release();
    // Deferred: cancelled in the same tick as it started, grpc-js can leave the socket open.
    process.nextTick(() => call.cancel());
  }
  defaults.streams.add(cancel);
  opts.signal?.addEventListener('abort', cancel, { once: true });
  // Kept for a caller that starts iterating after the stream failed: the iterator of a
  // stream destroyed by then just ends. (Without a listener the error would also be thrown.)
  let failure: unknown;
  call.on('error', (err) => (failure ??= err));
  call.on('close', release);
  async function* iterate(): AsyncGenerator<unknown> {
    try {
      for await (const message of call) yield message;
      if (failure !== undefined) throw failure;
    } catch (err) {
      const e = err as ServiceError;
      if (cancelled && e.code === status.CANCELLED) return;
      throw typeof e.code === 'number' ? toQuotaError(e) : err;
    } finally {
      // `break` out of the loop: end the call on the server too.
      if (!cancelled) cancel();
    }
  }
  return { [Symbol.asyncIterator]: iterate, cancel };
}

function channelCredentials(tls: ConnectOptions['tls']): ChannelCredentials {
  if (!tls) return grpcCredentials.createInsecure();
  if (tls === true) return grpcCredentials.createSsl();
  if (tls instanceof ChannelCredentials) return tls;
  const unknown = Object.keys(tls).filter((k) => !TLS_KEYS.has(k));
  if (Object.getPrototypeOf(tls) !== Object.prototype || unknown.length > 0)
    throw new TypeError(
      `connect: tls must be true, { ca, cert, key, serverName } or ChannelCredentials of the @grpc/grpc-js this client uses${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}`,
    );
  const buf = (v: Buffer | string | undefined): Buffer | null =>
    v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v);
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw new TypeError('connect: tls.cert and tls.key go together');
  return grpcCredentials.createSsl(buf(tls.ca), buf(tls.key), buf(tls.cert));
}

const TLS_KEYS = new Set(['ca', 'cert', 'key', 'serverName']);

/** Node's timers take at most 2^31-1 ms; a longer one would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

function positiveMs(value: number, name: string): number {
  if (!(value > 0 && value <= MAX_TIMER_MS))
    throw new RangeError(
      `${name} must be a number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${value}`,
    );
  return value;
}
