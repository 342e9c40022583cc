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

async function call(options: RateLimitOptions, init?: RequestInit, path = '/p/q?secret=1') {
  await http?.close();
  let handled = 0;
  http = await startHttpServer(
    withRateLimit((_req, res) => {
      handled++;
      res.end('ok');
    }, options),
  );
  const res = await fetch(`${http.url}${path}`, init);
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

  it('answers a throwing request mapping 500 without the handler, and ignores a throwing hook', async () => {
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
    expect(res.status).toBe(500);
    expect(handled).toBe(0);
    expect(requests).toHaveLength(0);
  });

  it('answers a throwing partitionKey function 500 too, whatever failureMode says', async () => {
    const errors: unknown[] = [];
    const { client } = stub({ allowed: true, limits: [limit] });
    const { res, handled } = await call({
      client,
      failureMode: 'open',
      onError: (e) => errors.push(e),
      headers: {
        partitionKey: () => {
          throw new Error('no key');
        },
      },
    });
    expect(res.status).toBe(500);
    expect(handled).toBe(0);
    expect(String(errors[0])).toContain('no key');
  });

  it('sends the default fields, a server-made request id, and a mapping of its own', async () => {
    const { client, requests } = stub({ allowed: true, limits: [limit] });
    await call(
      {
        client,
        requestId: () => 'made-by-the-server',
        request: (_req, fields) => ({ ...fields, userId: 'u-1', hits: 2 }),
      },
      { headers: { 'x-request-id': 'chosen-by-the-client', 'user-agent': 'tester/1' } },
    );
    expect(requests[0]).toMatchObject({
      ip: '127.0.0.1',
      resource: 'GET /p/q',
      path: '/p/q',
      userAgent: 'tester/1',
      userId: 'u-1',
      hits: 2,
      requestId: 'made-by-the-server',
    });
  });

  it('cuts every field to what the server accepts; oversized identifiers become digests', async () => {
    const { client, requests } = stub({ allowed: true });
    const long = (c: string, n = 300) => c.repeat(n);
    await call({
      client,
      request: (_req, fields) => ({
        ...fields,
        ip: long('1'),
        userId: long('u'),
        apiKey: long('k'),
        requestId: long('r'),
        host: long('é'),
        resource: long('R'),
        path: long('p', 3000),
        userAgent: long('a', 2000),
        hits: 5_000_000,
      }),
    });
    const sent = requests[0]!;
    for (const field of ['ip', 'userId', 'apiKey', 'requestId', 'host', 'resource'] as const)
      expect(Buffer.byteLength(sent[field]), field).toBeLessThanOrEqual(256);
    expect(Buffer.byteLength(sent.path)).toBe(2048);
    expect(Buffer.byteLength(sent.userAgent)).toBe(1024);
    expect(sent.hits).toBe(1_000_000);
    // Cut to a prefix, two user ids (or request ids) would share a counter (or an answer).
    expect(sent.userId).toMatch(/^sha256:[\w-]{43}$/);
    expect(sent.requestId).toMatch(/^sha256:[\w-]{43}$/);
    await call({ client, request: (_req, f) => ({ ...f, userId: `${long('u')}x` }) });
    expect(requests[1]!.userId).toMatch(/^sha256:/);
    expect(requests[1]!.userId).not.toBe(sent.userId);
    // A short id is sent as it is; NUL or a lone surrogate in one would be refused: digested.
    await call({ client, request: (_req, f) => ({ ...f, userId: 'u-1', apiKey: 'k\u0000' }) });
    expect(requests[2]).toMatchObject({ userId: 'u-1', apiKey: expect.stringMatching(/^sha256:/) });
  });

  it('answers a mapping field of the wrong type 500', async () => {
    const { client, requests } = stub({ allowed: true });
    for (const request of [
      (_req: IncomingMessage, f: Partial<CheckLimitRequest>) => ({ ...f, userId: ['a'] as never }),
      (_req: IncomingMessage, f: Partial<CheckLimitRequest>) => ({ ...f, hits: -1 }),
      () => 'ip' as never,
    ]) {
      const { res, handled } = await call({ client, request });
      expect(res.status).toBe(500);
      expect(handled).toBe(0);
    }
    expect(requests).toHaveLength(0);
  });

  it('counts /login, /Login and /login/ as one resource with a resource function', async () => {
    const { client, requests } = stub({ allowed: true });
    const resource = (req: IncomingMessage, path: string) =>
      `${req.method} ${path.toLowerCase().replace(/(?<=.)\/+$/, '')}`;
    for (const path of ['/login', '/Login', '/login/'])
      await call({ client, resource }, undefined, path);
    await call({ client }, undefined, '/Login/');
    expect(requests.map((r) => r.resource)).toEqual([
      'GET /login',
      'GET /login',
      'GET /login',
      'GET /Login/',
    ]);
  });

  it('checks every option when it is made: TypeError or RangeError naming it', () => {
    const { client } = stub({ allowed: true });
    const make = (o: Partial<RateLimitOptions>) => () =>
      withRateLimit(() => undefined, { client, ...o });
    expect(() => withRateLimit(() => undefined, { client: {} as CheckLimitClient })).toThrow(
      TypeError,
    );
    for (const deadlineMs of [0, -1, 250.5, 3e9, 2 ** 31, NaN, Infinity])
      expect(make({ deadlineMs }), String(deadlineMs)).toThrow(/deadlineMs/);
    for (const maxInFlight of [0, 1.5, 2 ** 31, NaN])
      expect(make({ maxInFlight }), String(maxInFlight)).toThrow(/maxInFlight/);
    for (const trustProxyHops of [-1, 0.5, NaN])
      expect(make({ trustProxyHops }), String(trustProxyHops)).toThrow(/trustProxyHops/);
    expect(make({ failureMode: 'ajar' as 'open' })).toThrow(/failureMode/);
    expect(make({ request: 'ip' as never })).toThrow(/request must be a function/);
    expect(make({ onError: {} as never })).toThrow(/onError/);
    expect(make({ deadlineMs: 1, maxInFlight: 2 ** 31 - 1 })).not.toThrow();
    expect(make({ deadlineMs: 2 ** 31 - 1 })).not.toThrow();
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

  it('counts the raw path unless given a resource function, and checks what it returns', () => {
    const r = req({ url: '/Login/?x=1', method: 'POST' });
    expect(limitRequestFromHttp(r).resource).toBe('POST /Login/');
    const lower = (q: IncomingMessage, path: string) => `${q.method} ${path.toLowerCase()}`;
    expect(limitRequestFromHttp(r, { resource: lower }).resource).toBe('POST /login/');
    expect(() => limitRequestFromHttp(r, { resource: () => 1 as never })).toThrow(TypeError);
    expect(() => limitRequestFromHttp(r, { trustProxyHops: -1 })).toThrow(RangeError);
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
