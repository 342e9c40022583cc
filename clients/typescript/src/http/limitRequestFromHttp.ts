import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { CheckLimitRequest } from '../gen/quota/v1/quota_service.js';
import { truncateUtf8 } from './boundCheckLimitRequest.js';

/** Options of {@link limitRequestFromHttp}. */
export interface LimitRequestFromHttpOptions {
  /**
   * Proxies in front of this server whose `X-Forwarded-For` entries are trusted. 0 takes the
   * socket's address: a client can write any X-Forwarded-For, so trusting it unasked would let
   * anyone pick the IP it is counted by. With n, the socket is the nearest proxy and the
   * client is the n-th address from the right of X-Forwarded-For (the leftmost when there are
   * fewer); an entry that is not an IP address falls back to the socket's address.
   * @default 0
   */
  trustProxyHops?: number;
  /**
   * The `resource` a request is counted as, given the request and its path (without query,
   * as sent: not decoded, not normalised). The default counts `/login`, `/Login` and
   * `/login/` as three resources; a router that sends them to one handler (Express does by
   * default: case-insensitive, trailing slash optional) wants them counted as one, e.g.
   * `` (req, path) => `${req.method} ${path.toLowerCase().replace(/(?<=.)\/+$/, '')}` ``,
   * or the route's template (`GET /items/:id`).
   * @default (req, path) => `${req.method} ${path}`
   */
  resource?: (req: IncomingMessage, path: string) => string;
}

/** Byte bounds of the fields (proto/quota/v1/quota_service.proto): longer is rejected. */
const MAX_IP = 256;
const MAX_RESOURCE = 256;
const MAX_PATH = 2048;
const MAX_USER_AGENT = 1024;

/**
 * The CheckLimit fields of an HTTP request: `ip` (see `trustProxyHops`), `resource` as the
 * method and path without the query string (`GET /items/42`: the query varies per call and
 * may hold secrets; see the `resource` option), `path` and `user_agent`, each cut to the
 * length the server accepts. Spread it and add `userId`, `apiKey`, `hits` or `host` for rules
 * on those. It reads the socket's address, which a request whose client hung up may no
 * longer have: call it before any `await` (the middleware hands its result to `request`).
 */
export function limitRequestFromHttp(
  req: IncomingMessage,
  options: LimitRequestFromHttpOptions = {},
): Partial<CheckLimitRequest> {
  const hops = checkTrustProxyHops(options.trustProxyHops ?? 0);
  const path = pathOf(req);
  const method = req.method ?? 'GET';
  const userAgent = req.headers['user-agent'];
  const resource = options.resource ? options.resource(req, path) : `${method} ${path}`;
  if (typeof resource !== 'string')
    throw new TypeError(`resource must return a string, got ${typeof resource}`);
  return {
    ip: clientIp(req, hops),
    resource: truncateUtf8(resource, MAX_RESOURCE),
    path: truncateUtf8(path, MAX_PATH),
    userAgent: truncateUtf8(typeof userAgent === 'string' ? userAgent : '', MAX_USER_AGENT),
  };
}

/** `hops` when it is a whole number of proxies; RangeError otherwise. */
export function checkTrustProxyHops(hops: number): number {
  if (!Number.isSafeInteger(hops) || hops < 0)
    throw new RangeError(`trustProxyHops must be a non-negative integer, got ${hops}`);
  return hops;
}

/** The path of the request target, without query: Express's `originalUrl` if mounted. */
function pathOf(req: IncomingMessage): string {
  const target = (req as { originalUrl?: unknown }).originalUrl;
  const url = typeof target === 'string' ? target : (req.url ?? '/');
  if (!url.startsWith('/')) {
    // Absolute form (`GET http://host/p` through a proxy) or `OPTIONS *`.
    try {
      return new URL(url).pathname;
    } catch {
      return url.split(/[?#]/, 1)[0] ?? '';
    }
  }
  return url.split(/[?#]/, 1)[0] ?? '/';
}

function clientIp(req: IncomingMessage, hops: number): string {
  const socket = req.socket?.remoteAddress ?? '';
  if (hops === 0) return truncateUtf8(socket, MAX_IP);
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (forwarded.length === 0) return truncateUtf8(socket, MAX_IP);
  // Nearest first: forwarded[length - 1] is what the nearest proxy saw.
  const chosen = forwarded[Math.max(0, forwarded.length - hops)] ?? '';
  return bareIp(chosen) ?? truncateUtf8(socket, MAX_IP);
}

/** An address as proxies write it (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`), or undefined. */
function bareIp(entry: string): string | undefined {
  if (isIP(entry)) return entry;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry)?.[1];
  if (bracketed && isIP(bracketed) === 6) return bracketed;
  const v4 = /^([\d.]+):\d+$/.exec(entry)?.[1];
  return v4 && isIP(v4) === 4 ? v4 : undefined;
}
