import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CheckLimitResponse,
  LimitStatus,
  limitRequestFromHttp,
  withRateLimit,
  type CheckLimitClient,
  type CheckLimitRequest,
  type RateLimitOptions,
} from '@quota-authority/client';
import { startHttpServer, type TestHttpServer } from '../support/httpServer.js';

// The middleware's decisions that a real server does not give on demand (degraded answers),
// with a stub in its place; the real server's are in test/integration/httpMiddleware.test.ts.

let http: TestHttpServer | undefined;

afterEach(async () => {
  await http?.close();
  http = undefined;
});

/** A CheckLimit stub answering `response` (or throwing `error`), recording requests. */
function stub(response: Partial<CheckLimitResponse> | Error) {
  const requests: CheckLimitRequest[] = [];
  const client: CheckLimitClient = {
    async checkLimit(request) {
      requests.push(request);
      if (response instanceof Error) throw response;
      return CheckLimitResponse.fromPartial(response);
    },
  };
  return { client, requests };
}

async function call(options: RateLimitOptions, init?: RequestInit) {
  let handled = 0;
  http = await startHttpServer(
    withRateLimit((_req, res) => {
      handled++;
      res.end('ok');
    }, options),
  );
  const res = await fetch(`${http.url}/p/q?secret=1`, init);
  return { res, body: await res.text(), handled };
}

const limit = LimitStatus.fromPartial({
  rule: 'ip-5',
  limit: 5,
  remaining: 4,
  window: { seconds: 10, nanos: 0 },
  resetAfter: { seconds: 10, nanos: 0 },
});

describe('withRateLimit with a stub quota client', () => {
  it('admits a degraded open answer without RateLimit fields and reports it', async () => {
    const degraded: CheckLimitResponse[] = [];
    const { client } = stub({ allowed: true, degraded: true, limits: [limit] });
    const { res, handled } = await call({ client, onDegraded: (r) => degraded.push(r) });
    expect(res.status).toBe(200);
    expect(handled).toBe(1);
    expect(res.headers.get('ratelimit')).toBeNull();
    expect(degraded).toHaveLength(1);
  });

  it("answers a degraded closed answer 503 with the server's Retry-After, whatever failureMode says", async () => {
    const { client } = stub({
      allowed: false,
      degraded: true,
      retryAfter: { seconds: 1, nanos: 0 },
    });
    const { res, handled } = await call({ client, failureMode: 'open' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('ratelimit')).toBeNull();
    expect(handled).toBe(0);
  });

  it('treats a throwing request mapping as a failure, and ignores a throwing hook', async () => {
    const { client, requests } = stub({ allowed: true });
    const { res, handled } = await call({
      client,
      request: () => {
        throw new Error('no session');
      },
      onError: () => {
        throw new Error('the hook broke');
      },
    });
    expect(res.status).toBe(200);
    expect(handled).toBe(1);
    expect(requests).toHaveLength(0);
  });

  it('counts a throwing partitionKey function as a failure too (fail-closed: 503)', async () => {
    const errors: unknown[] = [];
    const { client } = stub({ allowed: true, limits: [limit] });
    const { res, handled } = await call({
      client,
      failureMode: 'closed',
      onError: (e) => errors.push(e),
      headers: {
        partitionKey: () => {
          throw new Error('no key');
        },
      },
    });
    expect(res.status).toBe(503);
    expect(handled).toBe(0);
    expect(String(errors[0])).toContain('no key');
  });

  it('sends the default fields, the request id, and a mapping of its own', async () => {
    const { client, requests } = stub({ allowed: true, limits: [limit] });
    await call(
      {
        client,
        requestId: (req) => req.headers['x-request-id'] as string,
        request: (req) => ({ ...limitRequestFromHttp(req), userId: 'u-1', hits: 2 }),
      },
      { headers: { 'x-request-id': 'abc', 'user-agent': 'tester/1' } },
    );
    expect(requests[0]).toMatchObject({
      ip: '127.0.0.1',
      resource: 'GET /p/q',
      path: '/p/q',
      userAgent: 'tester/1',
      userId: 'u-1',
      hits: 2,
      requestId: 'abc',
    });
  });

  it('rejects a client without checkLimit and bad options at once', () => {
    expect(() => withRateLimit(() => undefined, { client: {} as CheckLimitClient })).toThrow(
      TypeError,
    );
    const { client } = stub({ allowed: true });
    expect(() => withRateLimit(() => undefined, { client, deadlineMs: 0 })).toThrow(RangeError);
  });
});

describe('limitRequestFromHttp', () => {
  const req = (r: {
    url?: string;
    method?: string;
    headers?: Record<string, string | string[]>;
    remoteAddress?: string;
    originalUrl?: string;
  }) =>
    ({
      url: r.url ?? '/',
      method: r.method ?? 'GET',
      headers: r.headers ?? {},
      socket: { remoteAddress: r.remoteAddress ?? '10.0.0.1' },
      ...(r.originalUrl !== undefined && { originalUrl: r.originalUrl }),
    }) as unknown as IncomingMessage;

  it('takes the X-Forwarded-For entry as many hops from the right as proxies are trusted', () => {
    const headers = { 'x-forwarded-for': '198.51.100.1, 203.0.113.5, 192.0.2.9' };
    expect(limitRequestFromHttp(req({ headers })).ip).toBe('10.0.0.1');
    expect(limitRequestFromHttp(req({ headers }), { trustProxyHops: 1 }).ip).toBe('192.0.2.9');
    expect(limitRequestFromHttp(req({ headers }), { trustProxyHops: 2 }).ip).toBe('203.0.113.5');
    expect(limitRequestFromHttp(req({ headers }), { trustProxyHops: 9 }).ip).toBe('198.51.100.1');
    const ports = { 'x-forwarded-for': '[2001:db8::1]:443, 192.0.2.1:8080' };
    expect(limitRequestFromHttp(req({ headers: ports }), { trustProxyHops: 1 }).ip).toBe(
      '192.0.2.1',
    );
    expect(limitRequestFromHttp(req({ headers: ports }), { trustProxyHops: 2 }).ip).toBe(
      '2001:db8::1',
    );
    const junk = { 'x-forwarded-for': 'unknown' };
    expect(limitRequestFromHttp(req({ headers: junk }), { trustProxyHops: 1 }).ip).toBe('10.0.0.1');
  });

  it('counts method and path without the query, from originalUrl when mounted', () => {
    expect(limitRequestFromHttp(req({ url: '/a/b?token=x#f', method: 'POST' }))).toMatchObject({
      resource: 'POST /a/b',
      path: '/a/b',
    });
    expect(limitRequestFromHttp(req({ url: '/b', originalUrl: '/api/b?x=1' })).resource).toBe(
      'GET /api/b',
    );
    expect(limitRequestFromHttp(req({ url: 'http://example.com/abs?x' })).path).toBe('/abs');
  });

  it('cuts fields to the bytes the server accepts, at a character boundary', () => {
    const long = `/${'é'.repeat(2000)}`;
    const fields = limitRequestFromHttp(
      req({ url: long, headers: { 'user-agent': 'x'.repeat(5000) } }),
    );
    expect(Buffer.byteLength(fields.resource!)).toBeLessThanOrEqual(256);
    expect(Buffer.byteLength(fields.path!)).toBeLessThanOrEqual(2048);
    expect(fields.path!.endsWith('é')).toBe(true);
    expect(fields.userAgent).toHaveLength(1024);
  });
});
