import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckLimitResponse } from '../gen/quota/v1/quota_service.js';
import type { GateFailure } from './gateFailure.js';
import type { RateLimitHeaderFields } from './rateLimitHeaders.js';
import type { RateLimitOptions } from './rateLimitOptions.js';
import { sendProblem } from './sendProblem.js';

const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

const UNAVAILABLE = {
  type: 'about:blank',
  title: 'Service Unavailable',
  detail: 'The rate limit could not be checked.',
};

const INTERNAL = {
  type: 'about:blank',
  title: 'Internal Server Error',
  detail: 'The rate limit could not be checked.',
};

/** The answer to a decision: true when the handler is to run (the fields are then set). */
export function answerDecision(
  req: IncomingMessage,
  res: ServerResponse,
  response: CheckLimitResponse,
  fields: RateLimitHeaderFields,
  options: RateLimitOptions,
): boolean {
  if (response.degraded) {
    notify(() => options.onDegraded?.(response, req));
    if (response.allowed) return true;
    sendProblem(res, 503, fields, UNAVAILABLE);
    return false;
  }
  if (response.allowed) {
    if (!res.headersSent) {
      if (fields['RateLimit-Policy']) res.setHeader('RateLimit-Policy', fields['RateLimit-Policy']);
      if (fields.RateLimit) res.setHeader('RateLimit', fields.RateLimit);
    }
    return true;
  }
  sendProblem(res, 429, fields, {
    type: QUOTA_EXCEEDED,
    title: 'Too Many Requests',
    detail: `Rate limit exceeded; retry after ${fields['Retry-After']} s.`,
    'violated-policies': response.limits.filter((l) => l.exceeded && !l.shadow).map((l) => l.rule),
  });
  return false;
}

/** The answer without a decision; true only for an unreachable service failing open. */
export function answerFailure(
  res: ServerResponse,
  failure: GateFailure,
  failureMode: 'open' | 'closed',
): boolean {
  if (failure.kind === 'unreachable') {
    if (failureMode === 'open') return true;
    sendProblem(res, 503, {}, UNAVAILABLE);
  } else if (failure.kind === 'backlog') {
    sendProblem(
      res,
      503,
      { 'Retry-After': String(failure.retryAfterS) },
      {
        ...UNAVAILABLE,
        detail: `The rate limit service is busy; retry after ${failure.retryAfterS} s.`,
      },
    );
  } else sendProblem(res, 500, {}, INTERNAL);
  return false;
}

/** Runs a hook; a hook that throws must not turn an answer into a crash. */
export function notify(hook: () => void): void {
  try {
    hook();
  } catch {
    // Ignored, as documented: the request is answered either way.
  }
}
