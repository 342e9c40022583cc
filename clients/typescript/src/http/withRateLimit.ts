import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRateLimitGate, type RateLimitOptions } from './rateLimitGate.js';

/**
 * A request listener for `http.createServer` that runs `handler` only for requests the quota
 * service admits (with the RateLimit fields already set on `res`); a denied request gets a
 * 429 and never reaches it, nor does one without a decision (503 or 500, unless the service
 * is unreachable and `failureMode` is `'open'`) or one whose client hung up. See
 * {@link RateLimitOptions}.
 */
export function withRateLimit<
  Req extends IncomingMessage = IncomingMessage,
  Res extends ServerResponse = ServerResponse,
>(
  handler: (req: Req, res: Res) => unknown,
  options: RateLimitOptions,
): (req: Req, res: Res) => void {
  const gate = createRateLimitGate(options);
  return (req, res) => {
    // The gate never rejects; a throw (or rejection) of the handler surfaces as it would
    // from a plain listener.
    void gate(req, res).then((admitted) => {
      if (admitted) return handler(req, res);
    });
  };
}
