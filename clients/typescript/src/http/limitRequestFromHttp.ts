import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { CheckLimitRequest } from '../gen/quota/v1/quota_service.js';

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
}

/** Byte bounds of the fields (proto/quota/v1/quota_service.proto): longer is rejected. */
const MAX_IP = 256;
const MAX_RESOURCE = 256;
const MAX_PATH = 2048;
const MAX_USER_AGENT = 1024;

/**
 * The CheckLimit fields of an HTTP request: `ip` (see `trustProxyHops`), `resource` as the
 * method and path without the query string (`GET /items/42`: the query varies per call and
 * may hold secrets), `path` and `user_agent`, each cut to the length the server accepts.
 * Spread it and add `userId`, `apiKey`, `hits` or `host` for rules on those.
 */
export function limitRequestFromHttp(
  req: IncomingMessage,
  options: LimitRequestFromHttpOptions = {},
): Partial<CheckLimitRequest> {
  const path = pathOf(req);
  const method = req.method ?? 'GET';
  const userAgent = req.headers['user-agent'];
  return {
    ip: clientIp(req, options.trustProxyHops ?? 0),
    resource: truncateUtf8(`${method} ${path}`, MAX_RESOURCE),
    path: truncateUtf8(path, MAX_PATH),
    userAgent: truncateUtf8(typeof userAgent === 'string' ? userAgent : '', MAX_USER_AGENT),
  };
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
  if (!Number.isInteger(hops) || hops < 0)
    throw new RangeError(`trustProxyHops must be a non-negative integer, got ${hops}`);
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

/**
 * `text` cut to at most `maxBytes` bytes of UTF-8 at a character boundary, with NUL and lone
 * surrogates replaced by U+FFFD: the server rejects both, and a rejected call is a failure.
 */
function truncateUtf8(text: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    const safe = code === 0 || (code >= 0xd800 && code <= 0xdfff) ? '\ufffd' : char;
    const size = Buffer.byteLength(safe, 'utf8');
    if (bytes + size > maxBytes) break;
    out += safe;
    bytes += size;
  }
  return out;
}
