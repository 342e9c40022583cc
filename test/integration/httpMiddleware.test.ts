import { randomUUID } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  connect,
  parseRateLimit,
  parseRateLimitPolicy,
  QuotaInvalidArgumentError,
  QuotaUnavailableError,
  RateLimitRule,
  rateLimitMiddleware,
  Scope,
  withRateLimit,
  type QuotaConnection,
} from '@quota-authority/client';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startHttpServer, type TestHttpServer } from '../support/httpServer.js';
import { freezableRelay } from '../support/freezableRelay.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

let db: TestDatabase;
let server: TestServer;
let http: TestHttpServer | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

beforeEach(async () => {
  const { rules } = await server.client.admin.listRateLimitRules({
    scope: Scope.SCOPE_UNSPECIFIED,
  });
  for (const r of rules) await server.client.admin.deleteRateLimitRule({ name: r.name });
});

afterEach(async () => {
  await http?.close();
  http = undefined;
});

async function upsert(r: Partial<RateLimitRule>): Promise<void> {
  await server.client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({ match: '*', window: { seconds: 60, nanos: 0 }, ...r }),
  });
}

/** A handler that counts its calls and answers 200 "ok". */
function countingHandler() {
  const calls: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    calls.push(req.url ?? '');
    res.end('ok');
  };
  return { calls, handler };
}

async function serve(listener: RequestListener): Promise<string> {
  http = await startHttpServer(listener);
  return http.url;
}

/** An address nothing listens on: a port the kernel just gave out and took back. */
async function deadAddress(): Promise<string> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

/**
 * The smallest Express look-alike: `use` queues `(req, res, next)` functions run in order,
 * an error passed to `next` answers 500. Enough to run the middleware as Express would.
 */
function expressLike() {
  type Middleware = (
    req: IncomingMessage,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ) => void;
  const stack: Middleware[] = [];
  const app = (req: IncomingMessage, res: ServerResponse) => {
    let i = 0;
    const next = (err?: unknown): void => {
      if (err !== undefined) {
        res.statusCode = 500;
        res.end(String(err));
        return;
      }
      stack[i++]?.(req, res, next);
    };
    next();
  };
  app.use = (mw: Middleware) => {
    stack.push(mw);
    return app;
  };
  return app;
}

describe('withRateLimit on node:http against a real quota server', () => {
  it('admits requests with the RateLimit fields and answers the (limit+1)th 429 without the handler', async () => {
    await upsert({ name: 'http-ip-3', scope: Scope.SCOPE_IP, limit: 3 });
    const { calls, handler } = countingHandler();
    const url = await serve(withRateLimit(handler, { client: server.client }));

    for (const remaining of [2, 1, 0]) {
      const res = await fetch(`${url}/items/1?page=2`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      expect(res.headers.get('ratelimit-policy')).toBe('"http-ip-3";q=3;w=60');
      const [limit] = parseRateLimit(res.headers.get('ratelimit') ?? undefined) ?? [];
      expect(limit).toMatchObject({ policy: 'http-ip-3', remaining });
      expect(limit!.effectiveWindow).toBeGreaterThan(0);
      // A sliding window drains fully at most two windows after its first count.
      expect(limit!.effectiveWindow).toBeLessThanOrEqual(120);
      expect(res.headers.get('retry-after')).toBeNull();
    }
    expect(calls).toHaveLength(3);

    const denied = await fetch(`${url}/items/1`);
    expect(denied.status).toBe(429);
    const retryAfter = denied.headers.get('retry-after');
    expect(retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect(Number(retryAfter)).toBeLessThanOrEqual(120);
    expect(parseRateLimitPolicy(denied.headers.get('ratelimit-policy') ?? undefined)).toEqual([
      expect.objectContaining({ policy: 'http-ip-3', quota: 3, window: 60 }),
    ]);
    expect(denied.headers.get('ratelimit')).toBe(`"http-ip-3";r=0;t=${retryAfter}`);
    expect(denied.headers.get('content-type')).toBe('application/problem+json');
    expect(await denied.json()).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      status: 429,
      'violated-policies': ['http-ip-3'],
    });
    expect(calls).toHaveLength(3);
  });

  it('counts the method and path without the query string as the resource', async () => {
    await upsert({ name: 'http-res-2', scope: Scope.SCOPE_RESOURCE, limit: 2 });
    const { calls, handler } = countingHandler();
    const url = await serve(withRateLimit(handler, { client: server.client }));
    const statuses = [];
    for (const q of ['a=1', 'a=2', 'a=3'])
      statuses.push((await fetch(`${url}/search?${q}`)).status);
    expect(statuses).toEqual([200, 200, 429]);
    // Another path is another resource, with a counter of its own.
    expect((await fetch(`${url}/other`)).status).toBe(200);
    expect((await fetch(`${url}/search`, { method: 'POST' })).status).toBe(200);
    expect(calls).toEqual(['/search?a=1', '/search?a=2', '/other', '/search']);
  });

  it('ignores X-Forwarded-For unless told to trust the proxy in front', async () => {
    await upsert({ name: 'http-ip-1', scope: Scope.SCOPE_IP, limit: 1 });
    const { handler } = countingHandler();
    const xff = (ip: string) => ({ headers: { 'x-forwarded-for': `198.51.100.7, ${ip}` } });

    const direct = await serve(withRateLimit(handler, { client: server.client }));
    expect((await fetch(direct, xff('203.0.113.1'))).status).toBe(200);
    // A client writing another X-Forwarded-For is still 127.0.0.1.
    expect((await fetch(direct, xff('203.0.113.2'))).status).toBe(429);
    await http!.close();

    const proxied = await serve(
      withRateLimit(handler, { client: server.client, trustProxyHops: 1 }),
    );
    expect((await fetch(proxied, xff('203.0.113.3'))).status).toBe(200);
    expect((await fetch(proxied, xff('203.0.113.4'))).status).toBe(200);
    expect((await fetch(proxied, xff('203.0.113.3'))).status).toBe(429);
  });

  it('counts every request with a server-made request id, whatever X-Request-Id a client repeats', async () => {
    await upsert({ name: 'http-ip-5', scope: Scope.SCOPE_IP, limit: 5 });
    const { handler } = countingHandler();
    const url = await serve(
      withRateLimit(handler, { client: server.client, requestId: () => randomUUID() }),
    );
    const remaining = async () => {
      // A client replaying one id would get its first answer for 24 h if the id were its own.
      const res = await fetch(url, { headers: { 'x-request-id': 'replayed' } });
      return parseRateLimit(res.headers.get('ratelimit') ?? undefined)?.[0]?.remaining;
    };
    expect([await remaining(), await remaining(), await remaining()]).toEqual([4, 3, 2]);
  });

  it('decides requests whose fields are longer than the server accepts, and keeps long ids apart', async () => {
    await upsert({ name: 'http-user-1', scope: Scope.SCOPE_USER, limit: 1 });
    const { calls, handler } = countingHandler();
    const url = await serve(
      withRateLimit(handler, {
        client: server.client,
        requestId: () => `${randomUUID()}${'r'.repeat(300)}`,
        request: (req, fields) => ({
          ...fields,
          userId: `${'u'.repeat(300)}${String(req.headers['x-user'])}`,
          host: 'h'.repeat(300),
        }),
      }),
    );
    const get = (user: string) =>
      fetch(`${url}/${'p'.repeat(3000)}`, {
        headers: { 'x-user': user, 'user-agent': 'a'.repeat(2000) },
      });
    const first = await get('a');
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('"http-user-1";q=1;w=60');
    // Another user whose id shares its first 256 bytes has a counter of its own.
    expect((await get('b')).status).toBe(200);
    expect((await get('a')).status).toBe(429);
    expect(calls).toHaveLength(2);
  });

  it('answers 500 when the server refuses the request (INVALID_ARGUMENT), failing open or not', async () => {
    await upsert({ name: 'http-ip-9', scope: Scope.SCOPE_IP, limit: 9 });
    const errors: unknown[] = [];
    const { calls, handler } = countingHandler();
    const url = await serve(
      withRateLimit(handler, {
        client: server.client,
        failureMode: 'open',
        request: (_req, fields) => ({ ...fields, ip: 'not an address' }),
        onError: (e) => errors.push(e),
      }),
    );
    const res = await fetch(url);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(calls).toHaveLength(0);
    expect(errors[0]).toBeInstanceOf(QuotaInvalidArgumentError);
  });

  it('answers 500 for a token the server does not know, failing open or not', async () => {
    const stranger = connect({ address: server.address, token: 'qa_unknown-token-0123456789' });
    try {
      const { calls, handler } = countingHandler();
      const url = await serve(withRateLimit(handler, { client: stranger }));
      expect((await fetch(url)).status).toBe(500);
      expect(calls).toHaveLength(0);
    } finally {
      stranger.close();
    }
  });

  it('counts /login, /Login and /login/ apart by default, as one with a resource function', async () => {
    await upsert({ name: 'http-res-2', scope: Scope.SCOPE_RESOURCE, limit: 2 });
    const { handler } = countingHandler();
    const statuses = async (url: string) => {
      const out = [];
      for (const p of ['/login', '/Login', '/login/', '/LOGIN'])
        out.push((await fetch(`${url}${p}`, { method: 'POST' })).status);
      return out;
    };
    const raw = await serve(withRateLimit(handler, { client: server.client }));
    expect(await statuses(raw)).toEqual([200, 200, 200, 200]);
    await http!.close();
    await server.client.admin.deleteRateLimitRule({ name: 'http-res-2' });
    await upsert({ name: 'http-res-2b', scope: Scope.SCOPE_RESOURCE, limit: 2 });
    const normalised = await serve(
      withRateLimit(handler, {
        client: server.client,
        resource: (req, path) => `${req.method} ${path.toLowerCase().replace(/(?<=.)\/+$/, '')}`,
      }),
    );
    expect(await statuses(normalised)).toEqual([200, 200, 429, 429]);
  });

  it('leaves shadow rules out of the fields', async () => {
    await upsert({ name: 'http-shadow', scope: Scope.SCOPE_IP, limit: 1, shadow: true });
    await upsert({ name: 'http-real', scope: Scope.SCOPE_IP, limit: 10 });
    const { handler } = countingHandler();
    const url = await serve(withRateLimit(handler, { client: server.client }));
    await fetch(url);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit-policy')).toBe('"http-real";q=10;w=60');
  });
});

describe('rateLimitMiddleware in an Express-style app against a real quota server', () => {
  it('calls next() with the fields set, and answers the (limit+1)th 429 without next()', async () => {
    await upsert({ name: 'http-mw-2', scope: Scope.SCOPE_IP, limit: 2 });
    const { calls, handler } = countingHandler();
    const app = expressLike()
      .use(rateLimitMiddleware({ client: server.client }))
      .use((req, res) => handler(req, res));
    const url = await serve(app);

    for (const remaining of [1, 0]) {
      const res = await fetch(`${url}/api`);
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit')).toMatch(
        new RegExp(`^"http-mw-2";r=${remaining};t=\\d+$`),
      );
    }
    const denied = await fetch(`${url}/api`);
    expect(denied.status).toBe(429);
    expect(Number(denied.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(denied.headers.get('ratelimit-policy')).toBe('"http-mw-2";q=2;w=60');
    expect(calls).toEqual(['/api', '/api']);
  });
});

describe('when the quota server cannot be reached', () => {
  let dead: QuotaConnection;
  let waiting: QuotaConnection;

  beforeAll(async () => {
    const address = await deadAddress();
    dead = connect({ address, token: 'unused' });
    // waitForReady: the call waits for a connection that never comes, until the deadline.
    waiting = connect({ address, token: 'unused', waitForReady: true });
  });

  afterAll(() => {
    dead?.close();
    waiting?.close();
  });

  it('fails open by default: admits without RateLimit fields and reports the error', async () => {
    const errors: unknown[] = [];
    const { calls, handler } = countingHandler();
    const url = await serve(
      withRateLimit(handler, { client: dead, deadlineMs: 300, onError: (e) => errors.push(e) }),
    );
    const started = performance.now();
    const res = await fetch(url);
    expect(performance.now() - started).toBeLessThan(300 + 500);
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit')).toBeNull();
    expect(res.headers.get('ratelimit-policy')).toBeNull();
    expect(calls).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(QuotaUnavailableError);
  });

  it('answers within the deadline while the call waits for a connection, open and closed', async () => {
    const errors: unknown[] = [];
    const { calls, handler } = countingHandler();
    const open = await serve(
      withRateLimit(handler, { client: waiting, deadlineMs: 300, onError: (e) => errors.push(e) }),
    );
    let started = performance.now();
    expect((await fetch(open)).status).toBe(200);
    const openMs = performance.now() - started;
    expect(openMs).toBeGreaterThanOrEqual(250);
    expect(openMs).toBeLessThan(300 + 500);
    expect(errors).toHaveLength(1);
    await http!.close();

    const closed = await serve(
      withRateLimit(handler, { client: waiting, deadlineMs: 300, failureMode: 'closed' }),
    );
    started = performance.now();
    const res = await fetch(closed);
    expect(performance.now() - started).toBeLessThan(300 + 500);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(calls).toHaveLength(1);
  });

  it('fails closed with 503 when told to, without calling next()', async () => {
    const { calls, handler } = countingHandler();
    const app = expressLike()
      .use(rateLimitMiddleware({ client: dead, deadlineMs: 300, failureMode: 'closed' }))
      .use((req, res) => handler(req, res));
    const url = await serve(app);
    const res = await fetch(url);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 503 });
    expect(res.headers.get('ratelimit')).toBeNull();
    expect(calls).toHaveLength(0);
  });
});

describe('when the quota server is connected but does not answer in time', () => {
  it('answers 503 with Retry-After within the deadline, failing open or not: its backlog', async () => {
    const relay = await freezableRelay(`http://${server.address}`);
    const viaRelay = connect({ address: new URL(relay.url).host, token: TEST_ADMIN_TOKEN });
    try {
      // Connected first: a deadline on a channel that never connected is the failure mode.
      await viaRelay.quota.checkLimit({ resource: 'warm-up' });
      relay.freeze();
      const { calls, handler } = countingHandler();
      const url = await serve(withRateLimit(handler, { client: viaRelay, deadlineMs: 300 }));
      const started = performance.now();
      const res = await fetch(url);
      expect(performance.now() - started).toBeLessThan(300 + 500);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(calls).toHaveLength(0);
    } finally {
      relay.thaw();
      viaRelay.close();
      await relay.close();
    }
  });
});
