import { getEventListeners } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  CheckLimitRequest,
  connect,
  QuotaDeadlineExceededError,
  QuotaInvalidArgumentError,
  QuotaNotFoundError,
  QuotaPermissionDeniedError,
  QuotaUnauthenticatedError,
  QuotaUnavailableError,
} from '@quota-authority/client';
import { adminV1 } from '@quota-authority/client';
import { startTestServer, useTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

const files = useTestServer();

/** A TCP server that accepts connections and never answers: calls to it can only time out. */
async function blackHole(): Promise<{ address: string; accepted: () => number; close(): void }> {
  const sockets: Socket[] = [];
  const s: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    accepted: () => sockets.length,
    close() {
      for (const socket of sockets) socket.destroy();
      s.close();
    },
  };
}

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** An interceptor that counts the attempts the client makes. */
function counting(): { interceptor: Interceptor; attempts: () => number } {
  let attempts = 0;
  return {
    interceptor: (options, nextCall) => {
      attempts++;
      return new InterceptingCall(nextCall(options));
    },
    attempts: () => attempts,
  };
}

const check = (r: Partial<CheckLimitRequest>) =>
  CheckLimitRequest.fromPartial({ userId: 'u', ...r });

describe('connect()', () => {
  it('refuses options it cannot use', () => {
    expect(() => connect({ address: '' })).toThrow(TypeError);
    expect(() => connect({ address: '127.0.0.1:1', deadlineMs: 0 })).toThrow(/deadlineMs/);
    expect(() => connect({ address: '127.0.0.1:1', deadlineMs: Number.NaN })).toThrow(RangeError);
    expect(() => connect({ address: '127.0.0.1:1', tls: { cert: 'x' } })).toThrow(
      /cert and tls.key/,
    );
  });

  it('gives typed errors: unauthenticated, permission denied, not found, invalid argument naming the field', async () => {
    const anonymous = connect({ address: files.server.address });
    try {
      await expect(anonymous.quota.checkLimit(check({}))).rejects.toBeInstanceOf(
        QuotaUnauthenticatedError,
      );
    } finally {
      anonymous.close();
    }
    const made = await files.server.client.admin.createToken({
      name: 'typed-errors',
      role: adminV1.Role.ROLE_CLIENT,
    });
    const asClient = connect({ address: files.server.address, token: made.token });
    try {
      await expect(asClient.admin.listTokens({})).rejects.toBeInstanceOf(
        QuotaPermissionDeniedError,
      );
    } finally {
      asClient.close();
    }
    await expect(
      files.server.client.admin.deleteRateLimitRule({ name: 'no-such-rule' }),
    ).rejects.toBeInstanceOf(QuotaNotFoundError);
    const err = await files.server.client.quota
      .checkLimit(check({ hits: 0, userId: 'a\u0000' }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(QuotaInvalidArgumentError);
    expect((err as QuotaInvalidArgumentError).field).toBe('user_id');
    expect((err as Error).cause).toMatchObject({ code: 3 });
  });

  it('fails at once with QuotaUnavailableError where nothing listens, and retries only calls with a request_id', async () => {
    const port = await closedPort();
    const counter = counting();
    const client = connect({
      address: `127.0.0.1:${port}`,
      token: TEST_ADMIN_TOKEN,
      retry: { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 100 },
      channelOptions: { interceptors: [counter.interceptor] },
    });
    try {
      const started = Date.now();
      await expect(client.quota.checkLimit(check({}))).rejects.toBeInstanceOf(
        QuotaUnavailableError,
      );
      expect(Date.now() - started).toBeLessThan(1000);
      expect(counter.attempts()).toBe(1);
      // Not retried either: a status read, and an admin write (no request_id in either).
      await expect(client.quota.getQuotaStatus({ userId: 'u' })).rejects.toBeInstanceOf(
        QuotaUnavailableError,
      );
      expect(counter.attempts()).toBe(2);
      await expect(client.quota.checkLimit(check({ requestId: 'r-1' }))).rejects.toBeInstanceOf(
        QuotaUnavailableError,
      );
      expect(counter.attempts()).toBe(5);
      // Retries off for one call.
      await expect(
        client.quota.checkLimit(check({ requestId: 'r-1' }), { retry: false }),
      ).rejects.toBeInstanceOf(QuotaUnavailableError);
      expect(counter.attempts()).toBe(6);
    } finally {
      client.close();
    }
  });

  it('gives every unary call a deadline, per attempt when retried', async () => {
    const hole = await blackHole();
    const counter = counting();
    const client = connect({
      address: hole.address,
      token: TEST_ADMIN_TOKEN,
      deadlineMs: 150,
      retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1 },
      channelOptions: { interceptors: [counter.interceptor] },
    });
    try {
      let started = Date.now();
      await expect(client.quota.checkLimit(check({}))).rejects.toBeInstanceOf(
        QuotaDeadlineExceededError,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      started = Date.now();
      await expect(client.quota.checkLimit(check({ requestId: 'r-2' }))).rejects.toBeInstanceOf(
        QuotaDeadlineExceededError,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(3 * 140);
      expect(counter.attempts()).toBe(1 + 3);
      // A per-call deadline overrides the connection's.
      started = Date.now();
      await expect(client.quota.checkLimit(check({}), { deadlineMs: 400 })).rejects.toBeInstanceOf(
        QuotaDeadlineExceededError,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    } finally {
      client.close();
      hole.close();
    }
  });

  it('stops a call and its retries when its signal aborts, rejecting with the reason', async () => {
    const hole = await blackHole();
    const client = connect({ address: hole.address, token: TEST_ADMIN_TOKEN, deadlineMs: 5000 });
    try {
      const controller = new AbortController();
      const reason = new Error('caller gave up');
      const started = Date.now();
      const call = client.quota.checkLimit(check({ requestId: 'r-3' }), {
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(reason), 100);
      await expect(call).rejects.toBe(reason);
      expect(Date.now() - started).toBeLessThan(2000);
      await expect(
        client.quota.checkLimit(check({}), { signal: AbortSignal.abort(reason) }),
      ).rejects.toBe(reason);
      // Aborted while it waits to retry: it ends then, not after the backoff.
      const port = await closedPort();
      const slow = connect({
        address: `127.0.0.1:${port}`,
        token: TEST_ADMIN_TOKEN,
        retry: { maxAttempts: 2, initialDelayMs: 10_000, maxDelayMs: 10_000 },
      });
      try {
        const waiting = new AbortController();
        const begun = Date.now();
        const retried = slow.quota.checkLimit(check({ requestId: 'r-4' }), {
          signal: waiting.signal,
        });
        setTimeout(() => waiting.abort(reason), 300);
        await expect(retried).rejects.toBe(reason);
        expect(Date.now() - begun).toBeLessThan(5000);
      } finally {
        slow.close();
      }
    } finally {
      client.close();
      hole.close();
    }
  });

  it('gives the refusal of a stream as a typed error, also to a caller that starts iterating late', async () => {
    const stream = files.server.client.quota.watchLoad({
      interval: { seconds: 0, nanos: 1e6 },
      hosts: [],
    });
    await new Promise((r) => setTimeout(r, 300));
    const err = await (async () => {
      for await (const snapshot of stream) return snapshot;
      return undefined;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaInvalidArgumentError);
    expect((err as QuotaInvalidArgumentError).field).toBe('interval');
  });

  it('completes a partial request with the defaults, as a plain JavaScript caller sends it', async () => {
    const answer = await files.server.client.quota.checkLimit({ userId: 'partial' });
    expect(answer.allowed).toBe(true);
    const status = await files.server.client.quota.getQuotaStatus({ userId: 'partial' });
    expect(status.userId).toBe('partial');
  });

  it('leaves no listener behind: many retriable calls without a signal, streams cancelled unread', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          files.server.client.quota.checkLimit(
            check({ userId: `many-${i}`, requestId: `many-${i}` }),
          ),
        ),
      );
      const controller = new AbortController();
      for (let i = 0; i < 15; i++)
        files.server.client.quota.watchLoad({ hosts: [] }, { signal: controller.signal }).cancel();
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      await new Promise((r) => setTimeout(r, 50));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('opens no call for a stream whose signal is already aborted', async () => {
    const before = files.server.app.loadWatchers();
    const stream = files.server.client.quota.watchLoad(
      { hosts: [] },
      { signal: AbortSignal.abort(new Error('no')) },
    );
    const received: unknown[] = [];
    for await (const snapshot of stream) received.push(snapshot);
    expect(received).toEqual([]);
    expect(files.server.app.loadWatchers()).toBe(before);
  });

  it('ends its open streams when closed', async () => {
    const conn = connect({ address: files.server.address, token: TEST_ADMIN_TOKEN });
    const before = files.server.app.loadWatchers();
    const stream = conn.quota.watchLoad({ interval: { seconds: 0, nanos: 100e6 }, hosts: [] });
    let received = 0;
    const ended = (async () => {
      for await (const snapshot of stream) if (snapshot) received++;
    })();
    await expect.poll(() => received).toBeGreaterThan(0);
    conn.close();
    await ended; // ends, without an error
    const after = received;
    await expect.poll(() => files.server.app.loadWatchers(), { timeout: 2000 }).toBe(before);
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toBe(after);
  });

  it('with waitForReady, waits for a server that starts within the deadline', async () => {
    const port = await closedPort();
    const waiting = connect({
      address: `127.0.0.1:${port}`,
      token: TEST_ADMIN_TOKEN,
      waitForReady: true,
      deadlineMs: 20_000,
    });
    let late: TestServer | undefined;
    try {
      const call = waiting.quota.checkLimit(check({ userId: 'late' }));
      late = await startTestServer(files.db.url, { QUOTA_PORT: String(port) });
      const answer = await call;
      expect(answer.allowed).toBe(true);
    } finally {
      waiting.close();
      await late?.stop();
    }
  });
});
