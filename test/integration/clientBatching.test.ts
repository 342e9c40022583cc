import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connect, QuotaInvalidArgumentError, QuotaUnavailableError } from '@quota-authority/client';
import { checkRecorder, useRecordedServer } from '../support/checkRecorder.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

/** Client micro-batching: concurrent checkLimit calls of one connection as CheckLimits calls. */

const client = useRecordedServer({ QUOTA_DB_TIMEOUT_MS: '5000' });

describe('client batching', () => {
  it('sends concurrent calls as few CheckLimits calls, each caller with its own answer', async () => {
    const rec = checkRecorder();
    const conn = client(rec);
    try {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => conn.quota.checkLimit({ userId: 'batched' })),
      );
      expect(answers.filter((a) => a.allowed)).toHaveLength(20);
      // Each caller its own answer: the remaining counts down 19..0, once each.
      const remaining = answers.filter((a) => a.allowed).map((a) => a.limits[0]!.remaining);
      expect(remaining.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(rec.calls.length).toBeLessThan(5);
      expect(rec.calls.some((c) => c.method === 'CheckLimits')).toBe(true);
      expect(rec.calls.flatMap((c) => c.checks)).toHaveLength(50);
    } finally {
      conn.close();
    }
  });

  it('gives each caller its own typed error, the others their answers', async () => {
    const rec = checkRecorder();
    const conn = client(rec);
    try {
      const results = await Promise.allSettled([
        conn.quota.checkLimit({ userId: 'own-1' }),
        conn.quota.checkLimit({ userId: 'own-2' }),
        conn.quota.checkLimit({ userId: 'nul\u0000' }),
        conn.quota.checkLimit({ userId: 'own-3', hits: 2_000_000 }),
        conn.quota.checkLimit({ userId: 'own-4' }),
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'rejected',
        'fulfilled',
      ]);
      const errors = [results[2], results[3]].map(
        (r) => (r as PromiseRejectedResult).reason as QuotaInvalidArgumentError,
      );
      for (const e of errors) expect(e).toBeInstanceOf(QuotaInvalidArgumentError);
      expect(errors.map((e) => e.field)).toEqual(['user_id', 'hits']);
      expect(rec.calls.some((c) => c.method === 'CheckLimits')).toBe(true);
    } finally {
      conn.close();
    }
  });

  it('sends one CheckLimit per call with batching: false', async () => {
    const rec = checkRecorder();
    const conn = client(rec, { batching: false });
    try {
      await Promise.all(
        Array.from({ length: 10 }, () => conn.quota.checkLimit({ userId: 'unbatched' })),
      );
      expect(rec.calls.map((c) => c.method)).toEqual(Array(10).fill('CheckLimit'));
    } finally {
      conn.close();
    }
  });

  it('fails each caller of a failed batch with the typed error, and retries only request_ids', async () => {
    const port = await closedPort();
    const rec = checkRecorder();
    const conn = connect({
      address: `127.0.0.1:${port}`,
      token: TEST_ADMIN_TOKEN,
      retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 },
      channelOptions: { interceptors: [rec.interceptor] },
    });
    try {
      const ids = ['', 'retry-1', '', 'retry-2', '', 'retry-3'];
      const results = await Promise.allSettled(
        ids.map((requestId, i) => conn.quota.checkLimit({ userId: `u-${i}`, requestId })),
      );
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(QuotaUnavailableError);
      }
      const sent = rec.calls.flatMap((c) => c.checks);
      // Without a request_id once; with one, once per attempt.
      for (const [i, id] of ids.entries())
        expect(sent.filter((s) => s === (id || `u-${i}`))).toHaveLength(id ? 3 : 1);
      expect(rec.calls.some((c) => c.method === 'CheckLimits')).toBe(true);
    } finally {
      conn.close();
    }
  });

  it('keeps each CheckLimits call within maxBatchBytes', async () => {
    const rec = checkRecorder();
    const conn = client(rec, { batching: { maxBatchBytes: 1024 } });
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          conn.quota.checkLimit({ userId: `sized-${i}`, path: `/${'p'.repeat(200)}` }),
        ),
      );
      expect(answers.every((a) => a.allowed)).toBe(true);
      const batches = rec.calls.filter((c) => c.method === 'CheckLimits');
      expect(batches.length).toBeGreaterThan(0);
      // About 220 bytes a check: at most 4 in 1 KiB.
      for (const b of batches) expect(b.checks.length).toBeLessThanOrEqual(4);
    } finally {
      conn.close();
    }
  });

  it('checks its options at connect', () => {
    expect(() => connect({ address: '127.0.0.1:1', batching: { maxBatch: 0 } })).toThrow(
      RangeError,
    );
    expect(() => connect({ address: '127.0.0.1:1', batching: { windowMs: -1 } })).toThrow(
      RangeError,
    );
    expect(() => connect({ address: '127.0.0.1:1', batching: { maxBatchBytes: 10 } })).toThrow(
      RangeError,
    );
  });
});

/** A port nothing listens on: calls fail UNAVAILABLE at once. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}
