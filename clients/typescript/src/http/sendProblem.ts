import type { ServerResponse } from 'node:http';
import type { RateLimitHeaderFields } from './rateLimitHeaders.js';

/**
 * Answers `res` with an RFC 9457 problem document and `headers`, unless an answer has already
 * begun (then there is nothing left to say).
 */
export function sendProblem(
  res: ServerResponse,
  status: number,
  headers: RateLimitHeaderFields,
  problem: Readonly<Record<string, unknown>>,
): void {
  if (res.headersSent || res.writableEnded) return;
  const body = JSON.stringify({ ...problem, status });
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers) as [string, string | undefined][])
    if (value !== undefined) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/problem+json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
