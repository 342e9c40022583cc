import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallOptions, QuotaConnection } from '../connect.js';
import { CheckLimitRequest, type CheckLimitResponse } from '../gen/quota/v1/quota_service.js';
import { limitRequestFromHttp } from './limitRequestFromHttp.js';
import {
  rateLimitHeaders,
  type RateLimitHeaderFields,
  type RateLimitHeaderOptions,
} from './rateLimitHeaders.js';
import { sendProblem } from './sendProblem.js';

/** Anything that answers CheckLimit the way `connect(...).quota` does (a stub in tests). */
export interface CheckLimitClient {
  checkLimit(request: CheckLimitRequest, options?: CallOptions): Promise<CheckLimitResponse>;
}

/** Options of the HTTP middleware ({@link withRateLimit}, {@link rateLimitMiddleware}). */
export interface RateLimitOptions {
  /** The quota server: a connection from `connect()`, or any {@link CheckLimitClient}. Required. */
  client: QuotaConnection | CheckLimitClient;
  /**
   * The CheckLimit fields of a request (may be async, e.g. to look up a session's user).
   * Whatever it leaves out is empty; a throw counts as a failure of the quota service.
   * @default (req) => limitRequestFromHttp(req, { trustProxyHops })
   */
  request?: (
    req: IncomingMessage,
  ) => Partial<CheckLimitRequest> | Promise<Partial<CheckLimitRequest>>;
  /**
   * Proxies whose X-Forwarded-For entries the default `request` trusts (see
   * `LimitRequestFromHttpOptions`); 0 counts the socket's address.
   * @default 0
   */
  trustProxyHops?: number;
  /**
   * A `request_id` per HTTP request (e.g. from an `X-Request-Id` the caller set): the server
   * counts a repeated id once, and the client then retries on UNAVAILABLE within `deadlineMs`.
   * A `requestId` from `request` wins.
   * @default none: no request_id, no retries
   */
  requestId?: (req: IncomingMessage) => string | undefined;
  /**
   * Time allowed for the decision, retries included, in milliseconds; past it the quota
   * service counts as failed (see `failureMode`).
   * @default 1000
   */
  deadlineMs?: number;
  /**
   * When the quota service cannot be reached or fails: `'open'` admits the request without
   * RateLimit fields; `'closed'` answers 503. A degraded answer (the server's own failure
   * mode) is followed as the server gave it: admitted, or 503 with its Retry-After.
   * @default 'open'
   */
  failureMode?: 'open' | 'closed';
  /**
   * Told of every failure of the decision (an error of the call or of `request`), for logs and
   * metrics; what it throws is ignored. Without it failures are silent.
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

/** Answers one HTTP request's rate limit: true when the handler is to run. */
export type RateLimitGate = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

const DEFAULT_DEADLINE_MS = 1000;
const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

/**
 * The decision shared by {@link withRateLimit} and {@link rateLimitMiddleware}: asks CheckLimit;
 * on an admission sets `RateLimit-Policy` and `RateLimit` and resolves true; on a denial
 * answers 429 with those, `Retry-After` and a problem document (the draft's quota-exceeded
 * type) and resolves false. Never rejects.
 */
export function createRateLimitGate(options: RateLimitOptions): RateLimitGate {
  const client = checkLimitClientOf(options.client);
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0)
    throw new RangeError(`deadlineMs must be a positive number, got ${deadlineMs}`);
  const failureMode = options.failureMode ?? 'open';
  if (failureMode !== 'open' && failureMode !== 'closed')
    throw new RangeError(`failureMode must be 'open' or 'closed', got ${String(failureMode)}`);
  const trustProxyHops = options.trustProxyHops ?? 0;
  const mapRequest =
    options.request ?? ((req: IncomingMessage) => limitRequestFromHttp(req, { trustProxyHops }));

  return async (req, res) => {
    let response: CheckLimitResponse;
    let fields: RateLimitHeaderFields;
    try {
      const given = await mapRequest(req);
      const request = CheckLimitRequest.fromPartial({
        ...given,
        requestId: given.requestId || options.requestId?.(req) || '',
      });
      response = await client.checkLimit(request, {
        deadlineMs,
        signal: AbortSignal.timeout(deadlineMs),
      });
      // Inside the try: a `partitionKey` function of the caller's may throw.
      fields = rateLimitHeaders(response, response.degraded ? {} : options.headers);
    } catch (err) {
      notify(() => options.onError?.(err, req));
      if (failureMode === 'open') return true;
      sendProblem(res, 503, {}, unavailable);
      return false;
    }
    if (response.degraded) {
      notify(() => options.onDegraded?.(response, req));
      if (response.allowed) return true;
      sendProblem(res, 503, fields, unavailable);
      return false;
    }
    if (response.allowed) {
      if (!res.headersSent) {
        if (fields['RateLimit-Policy'])
          res.setHeader('RateLimit-Policy', fields['RateLimit-Policy']);
        if (fields.RateLimit) res.setHeader('RateLimit', fields.RateLimit);
      }
      return true;
    }
    sendProblem(res, 429, fields, {
      type: QUOTA_EXCEEDED,
      title: 'Too Many Requests',
      detail: `Rate limit exceeded; retry after ${fields['Retry-After']} s.`,
      'violated-policies': response.limits
        .filter((l) => l.exceeded && !l.shadow)
        .map((l) => l.rule),
    });
    return false;
  };
}

const unavailable = {
  type: 'about:blank',
  title: 'Service Unavailable',
  detail: 'The rate limit could not be checked.',
};

function checkLimitClientOf(client: QuotaConnection | CheckLimitClient): CheckLimitClient {
  const c = client as Partial<QuotaConnection & CheckLimitClient> | undefined;
  if (typeof c?.quota?.checkLimit === 'function') return c.quota;
  if (typeof c?.checkLimit === 'function') return c as CheckLimitClient;
  throw new TypeError('client must be a QuotaConnection or have checkLimit(request, options)');
}

/** Runs a hook; a hook that throws must not turn an answer into a crash. */
function notify(hook: () => void): void {
  try {
    hook();
  } catch {
    // Ignored, as documented: the request is answered either way.
  }
}
