import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRateLimitGate, type RateLimitOptions } from './rateLimitGate.js';

/**
 * An Express-style middleware, `(req, res, next)`: calls `next()` for requests the quota
 * service admits (with the RateLimit fields set on `res`) and answers a denied one with 429
 * itself, without calling `next`; likewise one without a decision (503 or 500, unless the
 * service is unreachable and `failureMode` is `'open'`). A request whose client hung up gets
 * neither an answer nor `next()`. Its types are Node's, which Express's request and response
 * extend, so it needs no Express types. See {@link RateLimitOptions}.
 */
export function rateLimitMiddleware(
  options: RateLimitOptions,
): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  const gate = createRateLimitGate(options);
  return (req, res, next) => {
    gate(req, res).then((admitted) => {
      if (admitted) next();
    }, next);
  };
}
