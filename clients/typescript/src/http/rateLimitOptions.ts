import type { IncomingMessage } from 'node:http';
import type { CallOptions, QuotaConnection } from '../connect.js';
import type { CheckLimitRequest, CheckLimitResponse } from '../gen/quota/v1/quota_service.js';
import type { RateLimitHeaderOptions } from './rateLimitHeaders.js';

/** Anything that answers CheckLimit the way `connect(...).quota` does (a stub in tests). */
export interface CheckLimitClient {
  checkLimit(request: CheckLimitRequest, options?: CallOptions): Promise<CheckLimitResponse>;
}

/**
 * Options of the HTTP middleware ({@link withRateLimit}, {@link rateLimitMiddleware}).
 *
 * What a request gets when no decision comes: only a quota service that cannot be reached
 * (UNAVAILABLE: no connection, or it dropped; or the deadline passed while the channel was not
 * connected) follows `failureMode`. The service's own backlog (RESOURCE_EXHAUSTED, the
 * deadline passed on a connected channel, more than `maxInFlight` decisions pending) is
 * answered 503 with Retry-After; any other failure (INVALID_ARGUMENT, UNAUTHENTICATED, a
 * throwing `request`, …) 500. Neither is ever admitted: a flood must not let itself in.
 */
export interface RateLimitOptions {
  /** The quota server: a connection from `connect()`, or any {@link CheckLimitClient}. Required. */
  client: QuotaConnection | CheckLimitClient;
  /**
   * The CheckLimit fields of a request (may be async, e.g. to look up a session's user). It
   * is given `fields`, the default fields (`limitRequestFromHttp` with `trustProxyHops` and
   * `resource`) read when the request entered the gate, before any `await`: spread them and
   * add `userId`, `apiKey`, `hits`, `host`. Whatever it leaves out is empty (no IP: IP rules
   * do not apply). Text fields are then cut to what the server accepts (an oversized
   * `userId`, `apiKey` or `requestId` replaced by its SHA-256), `hits` lowered to 1,000,000.
   * A throw, or a field the server still rejects, answers 500, never admits.
   * @default (req, fields) => fields, answered 500 when it found no client IP
   */
  request?: (
    req: IncomingMessage,
    fields: Partial<CheckLimitRequest>,
  ) => Partial<CheckLimitRequest> | Promise<Partial<CheckLimitRequest>>;
  /**
   * Proxies whose X-Forwarded-For entries the default fields trust (see
   * `LimitRequestFromHttpOptions`); 0 counts the socket's address.
   * @default 0
   */
  trustProxyHops?: number;
  /**
   * The `resource` of the default fields (see `LimitRequestFromHttpOptions.resource`): the raw
   * path by default, so `/login`, `/Login` and `/login/` are counted apart.
   * @default (req, path) => `${req.method} ${path}`
   */
  resource?: (req: IncomingMessage, path: string) => string;
  /**
   * A `request_id` per HTTP request, which lets the client retry UNAVAILABLE within
   * `deadlineMs`; a `requestId` from `request` wins. The server answers a repeated id with its
   * first answer for 24 h, so it must be made by your server, unique per request (e.g.
   * `() => randomUUID()`): never a client's input such as X-Request-Id, or a client replays
   * one allowed id to be admitted forever.
   * @default none: no request_id, no retries
   */
  requestId?: (req: IncomingMessage) => string | undefined;
  /**
   * Time allowed for the decision, from the request's arrival (`request` and retries
   * included), in whole milliseconds from 1 to 2^31-1. Past it the request is not admitted
   * (503) while the quota service is connected, since that is its backlog; only while it is
   * not connected does `failureMode` apply.
   * @default 1000
   */
  deadlineMs?: number;
  /**
   * Decisions this gate waits for at once, a whole number from 1 to 2^31-1. A request past it
   * is answered 503 with `Retry-After: 1` without asking: a flood then queues no more calls
   * than this on the quota service, and none of it is admitted.
   * @default 256
   */
  maxInFlight?: number;
  /**
   * When the quota service cannot be reached (UNAVAILABLE, or no connection by the deadline):
   * `'open'` admits the request without RateLimit fields; `'closed'` answers 503. Nothing else
   * follows it (see {@link RateLimitOptions}). A degraded answer (the server's own failure
   * mode) is followed as the server gave it: admitted, or 503 with its Retry-After.
   * @default 'open'
   */
  failureMode?: 'open' | 'closed';
  /**
   * Told of every failure of the decision (an error of the call, of `request`, or a
   * RateLimitGateError), for logs and metrics; what it throws is ignored. Without it
   * failures are silent. A client that hung up is not a failure.
   * @default none
   */
  onError?: (error: unknown, req: IncomingMessage) => void;
  /**
   * Told of every degraded answer (the server's database did not answer in time); what it
   * throws is ignored.
   * @default none
   */
  onDegraded?: (response: CheckLimitResponse, req: IncomingMessage) => void;
  /**
   * How the RateLimit fields are written: which limits, partition keys, quota unit.
   * @default {} (all limits, no partition key, no quota unit)
   */
  headers?: RateLimitHeaderOptions;
}
