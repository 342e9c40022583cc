import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckLimitResponse } from '../gen/quota/v1/quota_service.js';
import { boundCheckLimitRequest } from './boundCheckLimitRequest.js';
import { checkRateLimitOptions } from './checkRateLimitOptions.js';
import { classifyFailure, type GateFailure, type GatePhase } from './gateFailure.js';
import { limitRequestFromHttp } from './limitRequestFromHttp.js';
import { RateLimitGateError } from './rateLimitGateError.js';
import { answerDecision, answerFailure, notify } from './gateAnswers.js';
import { rateLimitHeaders, type RateLimitHeaderFields } from './rateLimitHeaders.js';
import type { RateLimitOptions } from './rateLimitOptions.js';
import { watchClient } from './watchClient.js';

export type { CheckLimitClient, RateLimitOptions } from './rateLimitOptions.js';

/** Answers one HTTP request's rate limit: true when the handler is to run. */
export type RateLimitGate = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** A decision, or why there is none. */
type Outcome =
  | {
      readonly kind: 'decided';
      readonly response: CheckLimitResponse;
      readonly fields: RateLimitHeaderFields;
    }
  | { readonly kind: 'failed'; readonly failure: GateFailure }
  | { readonly kind: 'gone' };

/**
 * The decision shared by {@link withRateLimit} and {@link rateLimitMiddleware}: asks CheckLimit;
 * on an admission sets `RateLimit-Policy` and `RateLimit` and resolves true; on a denial
 * answers 429 with those, `Retry-After` and a problem document (the draft's quota-exceeded
 * type) and resolves false. Without a decision it answers as {@link RateLimitOptions} says
 * (only an unreachable service may be admitted). A request whose client hung up gets no
 * answer and resolves false. Never rejects. Options are checked here (TypeError, RangeError).
 */
export function createRateLimitGate(options: RateLimitOptions): RateLimitGate {
  const config = checkRateLimitOptions(options);
  let inFlight = 0;

  /** The decision of one request; `gone` aborts when its client hangs up. */
  async function decide(req: IncomingMessage, gone: AbortSignal): Promise<Outcome> {
    const deadline = AbortSignal.timeout(config.deadlineMs);
    const signal = AbortSignal.any([deadline, gone]);
    const started = performance.now();
    let phase: GatePhase = 'request';
    try {
      // Before any await: a client that hangs up takes its socket's address with it.
      const defaults = limitRequestFromHttp(req, {
        trustProxyHops: config.trustProxyHops,
        resource: options.resource,
      });
      const requestId = options.requestId?.(req);
      let given = defaults;
      if (options.request) given = await untilAborted(options.request(req, defaults), signal);
      // Counted by no IP, a request would be exempt from every IP rule.
      else if (!defaults.ip)
        throw new RateLimitGateError('unknownClientAddress', 'the client address is unknown');
      const request = boundCheckLimitRequest(given, requestId);
      phase = 'call';
      const left = Math.max(1, Math.ceil(config.deadlineMs - (performance.now() - started)));
      const response = await config.client.checkLimit(request, { deadlineMs: left, signal });
      // Inside the try: a `partitionKey` function of the caller's may throw.
      const fields = rateLimitHeaders(response, response.degraded ? {} : options.headers);
      return { kind: 'decided', response, fields };
    } catch (err) {
      if (gone.aborted) return { kind: 'gone' };
      notify(() => options.onError?.(err, req));
      return {
        kind: 'failed',
        failure: classifyFailure(err, deadline.aborted, phase, config.connected()),
      };
    }
  }

  return async (req, res) => {
    const watch = watchClient(req, res);
    if (watch.signal.aborted) return false;
    if (inFlight >= config.maxInFlight) {
      watch.release();
      const err = new RateLimitGateError(
        'maxInFlight',
        `${config.maxInFlight} rate limit decisions are pending`,
      );
      notify(() => options.onError?.(err, req));
      return answerFailure(res, { kind: 'backlog', retryAfterS: 1 }, config.failureMode);
    }
    inFlight++;
    let outcome: Outcome;
    try {
      outcome = await decide(req, watch.signal);
    } finally {
      inFlight--;
      watch.release();
    }
    // No one to answer, and no handler to run for a request that is gone.
    if (outcome.kind === 'gone' || watch.signal.aborted) return false;
    if (outcome.kind === 'failed') return answerFailure(res, outcome.failure, config.failureMode);
    return answerDecision(req, res, outcome.response, outcome.fields, options);
  };
}

/** `work`, or a rejection with the signal's reason once it aborts (a hung `request`). */
function untilAborted<T>(work: T | Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(work)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}
