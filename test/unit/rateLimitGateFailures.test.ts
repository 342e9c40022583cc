import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect as netConnect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CheckLimitResponse,
  RateLimitGateError,
  toQuotaError,
  withRateLimit,
  type CallOptions,
  type CheckLimitClient,
  type CheckLimitRequest,
  type RateLimitOptions,
} from '@quota-authority/client';
import { startHttpServer, type TestHttpServer } from '../support/httpServer.js';

// What the middleware answers without a decision. Only an unreachable quota service follows
// failureMode; its backlog (shed, deadline, too many pending) is 503 and any other failure 500,
// never admitted. Stubs stand in for the errors a real server does not give on demand; the
// real server's are in test/integration/httpMiddleware.test.ts and httpBurst.test.ts.

let http: TestHttpServer | undefined;

afterEach(async () => {
  await http?.close();
  http = undefined;
});

/** The typed error of a grpc-js call failing with `code`. */
function quotaError(code: status, trailers: Record<string, string> = {}) {
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(trailers)) metadata.set(k, v);
  const err = Object.assign(new Error(`${code} ${status[code]}: test`), {
    code,
    details: 'test',
    metadata,
  }) as ServiceError;
  return toQuotaError(err);
}

/** A client whose every call throws `error`. */
const failing = (error: unknown): CheckLimitClient => ({
  checkLimit: () => Promise.reject(error),
});

/** A client that answers only when told to, or rejects with its signal's reason. */
function held() {
  const calls: { signal: AbortSignal; answer: () => void }[] = [];
  const client: CheckLimitClient = {
    checkLimit: (_request: CheckLimitRequest, options?: CallOptions) =>
      new Promise((resolve, reject) => {
        const signal = options!.signal!;
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        calls.push({
          signal,
          answer: () => resolve(CheckLimitResponse.fromPartial({ allowed: true })),
        });
      }),
  };
  return { client, calls };
}

async function serve(options: RateLimitOptions) {
  const handled: string[] = [];
  http = await startHttpServer(
    withRateLimit((req, res) => {
      handled.push(req.url ?? '');
      res.end('ok');
    }, options),
  );
  return { url: http.url, handled };
}

async function once(options: RateLimitOptions) {
  const { url, handled } = await serve(options);
  const res = await fetch(url);
  await res.arrayBuffer();
  await http?.close();
  http = undefined;
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    handled: handled.length,
  };
}

describe('the middleware without a decision', () => {
  it('answers a shed call (RESOURCE_EXHAUSTED) 503 with the retry-after-ms trailer, failing open or not', async () => {
    for (const failureMode of ['open', 'closed'] as const) {
      const shed = quotaError(status.RESOURCE_EXHAUSTED, { 'retry-after-ms': '2500' });
      expect(await once({ client: failing(shed), failureMode })).toEqual({
        status: 503,
        retryAfter: '3',
        handled: 0,
      });
    }
    const bare = quotaError(status.RESOURCE_EXHAUSTED);
    expect(await once({ client: failing(bare) })).toMatchObject({ status: 503, retryAfter: '1' });
  });

  it('answers a passed deadline 503: a connected service that did not answer in time is its backlog', async () => {
    const { client } = held();
    const started = performance.now();
    expect(await once({ client, deadlineMs: 100 })).toEqual({
      status: 503,
      retryAfter: '1',
      handled: 0,
    });
    expect(performance.now() - started).toBeLessThan(100 + 400);
    const deadline = quotaError(status.DEADLINE_EXCEEDED);
    expect(await once({ client: failing(deadline) })).toMatchObject({ status: 503, handled: 0 });
    // A request mapping that does not finish in time is the same.
    const hung = {
      client: held().client,
      deadlineMs: 100,
      request: () => new Promise<never>(() => {}),
    };
    expect(await once(hung)).toMatchObject({ status: 503, handled: 0 });
  });

  it('follows failureMode only when the service cannot be reached (UNAVAILABLE)', async () => {
    const unreachable = failing(quotaError(status.UNAVAILABLE));
    expect(await once({ client: unreachable })).toEqual({
      status: 200,
      retryAfter: null,
      handled: 1,
    });
    expect(await once({ client: unreachable, failureMode: 'closed' })).toMatchObject({
      status: 503,
      handled: 0,
    });
  });

  it('answers any other failure 500, whatever failureMode says', async () => {
    for (const error of [
      quotaError(status.INVALID_ARGUMENT, { 'invalid-field': 'request_id' }),
      quotaError(status.UNAUTHENTICATED),
      quotaError(status.PERMISSION_DENIED),
      quotaError(status.INTERNAL),
      new Error('a bug'),
    ])
      expect(await once({ client: failing(error), failureMode: 'open' }), String(error)).toEqual({
        status: 500,
        retryAfter: null,
        handled: 0,
      });
  });

  it(`answers 503 at once past maxInFlight decisions pending, and frees the places after`, async () => {
    const { client, calls } = held();
    const errors: unknown[] = [];
    const { url, handled } = await serve({
      client,
      maxInFlight: 2,
      onError: (e) => errors.push(e),
    });
    const first = [fetch(`${url}/1`), fetch(`${url}/2`)];
    await expect.poll(() => calls.length).toBe(2);
    const third = await fetch(`${url}/3`);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(errors).toEqual([expect.any(RateLimitGateError)]);
    expect((errors[0] as RateLimitGateError).reason).toBe('maxInFlight');
    for (const c of calls) c.answer();
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    const fourth = fetch(`${url}/4`);
    await expect.poll(() => calls.length).toBe(3);
    calls[2]!.answer();
    expect((await fourth).status).toBe(200);
    expect(handled.sort()).toEqual(['/1', '/2', '/4']);
  });
});

describe('a client that hangs up', () => {
  /** Sends a GET on a raw socket, and returns a function that hangs up. */
  async function rawGet(url: string) {
    const { hostname, port } = new URL(url);
    const socket = netConnect(Number(port), hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET /gone HTTP/1.1\r\nHost: x\r\n\r\n');
    let answered = '';
    socket.on('data', (d: Buffer) => (answered += d.toString()));
    socket.on('error', () => undefined);
    return { hangUp: () => socket.destroy(), answered: () => answered };
  }

  it('gives an async mapping the address read on entry, and runs no handler once it is gone', async () => {
    const seen: unknown[] = [];
    let entered!: () => void;
    const inMapping = new Promise<void>((resolve) => (entered = resolve));
    const { client, calls } = held();
    const { url, handled } = await serve({
      client,
      request: async (_req, fields) => {
        seen.push(fields.ip);
        entered();
        await new Promise((resolve) => setTimeout(resolve, 200));
        return fields;
      },
    });
    const raw = await rawGet(url);
    await inMapping;
    raw.hangUp();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(seen).toEqual(['127.0.0.1']);
    expect(calls).toHaveLength(0);
    expect(handled).toEqual([]);
  });

  it('cancels its CheckLimit call, answers nothing and tells no error', async () => {
    const errors: unknown[] = [];
    const { client, calls } = held();
    const { url, handled } = await serve({ client, onError: (e) => errors.push(e) });
    const raw = await rawGet(url);
    await expect.poll(() => calls.length).toBe(1);
    raw.hangUp();
    await expect.poll(() => calls[0]!.signal.aborted).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(handled).toEqual([]);
    expect(errors).toEqual([]);
    expect(raw.answered()).toBe('');
  });
});

describe('a request without a client address', () => {
  let dir: string | undefined;
  let server: Server | undefined;

  afterEach(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    if (dir) await rm(dir, { recursive: true, force: true });
    server = undefined;
    dir = undefined;
  });

  /** Serves on a Unix socket, where a request has no remote address; GETs / once. */
  async function overUnixSocket(options: RateLimitOptions) {
    dir = await mkdtemp(join(tmpdir(), 'gate-'));
    const socketPath = join(dir, 'http.sock');
    let handled = 0;
    server = createServer(
      withRateLimit((_req, res) => {
        handled++;
        res.end('ok');
      }, options),
    );
    await new Promise<void>((resolve) => server!.listen(socketPath, resolve));
    const status = await new Promise<number>((resolve, reject) =>
      httpRequest({ socketPath, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
        .on('error', reject)
        .end(),
    );
    return { status, handled };
  }

  it('is answered 500 with the default fields, not exempted from IP rules', async () => {
    const errors: unknown[] = [];
    const allowed: CheckLimitClient = {
      checkLimit: async () => CheckLimitResponse.fromPartial({ allowed: true }),
    };
    expect(await overUnixSocket({ client: allowed, onError: (e) => errors.push(e) })).toEqual({
      status: 500,
      handled: 0,
    });
    expect((errors[0] as RateLimitGateError).reason).toBe('unknownClientAddress');
    // A mapping of one's own counts by what it chose.
    const byUser = { client: allowed, request: () => ({ userId: 'u-1' }) };
    expect(await overUnixSocket(byUser)).toEqual({ status: 200, handled: 1 });
  });
});
