import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { connect, QuotaCallError, type QuotaConnection } from '@quota-authority/client';
import type { CallContext } from '../../src/grpc/CallContext.js';
import { handleServerStream } from '../../src/grpc/handleServerStream.js';
import { handleUnary } from '../../src/grpc/handleUnary.js';
import type { Middleware } from '../../src/grpc/Middleware.js';
import { StatusError } from '../../src/grpc/toStatus.js';
import {
  CheckLimitRequest,
  CheckLimitResponse,
  QuotaServiceService,
  WatchLoadRequest,
  type LoadSnapshot,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

/** What the middleware and handlers saw, per call. */
const seen: { step: string; method: string; header?: string; peer?: string; deadline?: Date }[] =
  [];
let streamEnded: Promise<boolean> = Promise.resolve(false);
let server: grpc.Server;
let client: QuotaConnection;

const record =
  (step: string): Middleware =>
  async (ctx, next) => {
    seen.push({ step: `${step}:before`, method: ctx.method });
    try {
      await next();
    } finally {
      seen.push({ step: `${step}:after`, method: ctx.method });
    }
  };

/** Refuses calls that carry `x-refuse`, as authentication will: the handler never runs. */
const refuse: Middleware = async (ctx, next) => {
  if (ctx.metadata.get('x-refuse').length > 0)
    throw new StatusError(grpc.status.PERMISSION_DENIED, 'refused by middleware');
  await next();
};

beforeAll(async () => {
  const deps = { middleware: [record('outer'), record('inner'), refuse] };
  const observe = (ctx: CallContext) =>
    seen.push({
      step: 'handler',
      method: ctx.method,
      header: String(ctx.metadata.get('x-test')[0] ?? ''),
      peer: ctx.peer,
      deadline: ctx.deadline,
    });
  server = new grpc.Server();
  const unimplemented = () => undefined;
  server.addService(QuotaServiceService, {
    checkLimit: handleUnary<CheckLimitRequest, CheckLimitResponse>(
      'quota.v1.QuotaService',
      'CheckLimit',
      deps,
      async (req, ctx) => {
        observe(ctx);
        return CheckLimitResponse.fromPartial({ allowed: req.userId === 'ok' });
      },
    ),
    watchLoad: handleServerStream<WatchLoadRequest, LoadSnapshot>(
      'quota.v1.QuotaService',
      'WatchLoad',
      deps,
      (_req, ctx) => {
        observe(ctx);
        ctx.send({
          host: 'h',
          at: new Date(0),
          cpuPercent: 1,
          memoryPercent: 2,
          diskPercent: 3,
          diskReadBytesPerSec: 0,
          diskWriteBytesPerSec: 0,
          netRxBytesPerSec: 0,
          netTxBytesPerSec: 0,
          loadAvg1m: 0,
          throttleFactor: 1,
          stale: false,
        });
        // Ends only when the caller cancels: the signal is the handler's one way to know.
        streamEnded = new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(true), { once: true }),
        );
        return streamEnded.then(() => undefined);
      },
    ),
    checkCommandQuota: unimplemented,
    recordExecution: unimplemented,
    getQuotaStatus: unimplemented,
    reportLoad: unimplemented,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  client = connect({ address: `127.0.0.1:${port}` });
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

describe('call context and middleware chain', () => {
  it('runs the middleware around the handler, first outermost, and gives it metadata, peer and deadline', async () => {
    seen.length = 0;
    const metadata = new grpc.Metadata();
    metadata.set('x-test', 'hello');
    const before = Date.now();
    const res = await client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'ok' }), {
      metadata,
      deadlineMs: 4000,
    });
    expect(res.allowed).toBe(true);
    expect(seen.map((s) => s.step)).toEqual([
      'outer:before',
      'inner:before',
      'handler',
      'inner:after',
      'outer:after',
    ]);
    const handler = seen.find((s) => s.step === 'handler')!;
    expect(handler.method).toBe('CheckLimit');
    expect(handler.header).toBe('hello');
    expect(handler.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    // The deadline the client set (now + 4 s), as the server received it.
    expect(handler.deadline).toBeInstanceOf(Date);
    expect(handler.deadline!.getTime()).toBeGreaterThan(before + 3000);
    expect(handler.deadline!.getTime()).toBeLessThan(before + 5000);
  });

  it('lets a middleware refuse a call with its own status before the handler runs', async () => {
    seen.length = 0;
    const metadata = new grpc.Metadata();
    metadata.set('x-refuse', '1');
    const err = await client.quota
      .checkLimit(CheckLimitRequest.fromPartial({ userId: 'ok' }), { metadata })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaCallError);
    expect((err as QuotaCallError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect(seen.map((s) => s.step)).toEqual([
      'outer:before',
      'inner:before',
      'inner:after',
      'outer:after',
    ]);
  });

  it('aborts a stream handler signal when the caller cancels', async () => {
    seen.length = 0;
    const stream = client.quota.watchLoad(WatchLoadRequest.fromPartial({}));
    const first = (await stream[Symbol.asyncIterator]().next()).value as LoadSnapshot;
    expect(first.host).toBe('h');
    stream.cancel();
    expect(await streamEnded).toBe(true);
    await expect.poll(() => seen.map((s) => s.step)).toContain('outer:after');
  });
});
