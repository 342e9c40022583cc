import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  connect,
  quotaV1,
  QuotaCallError,
  QuotaCancelledError,
  QuotaDeadlineExceededError,
  QuotaResourceExhaustedError,
  type CheckLimitRequest,
} from '@quota-authority/client';
import { checkRecorder, useRecordedServer } from '../support/checkRecorder.js';

/**
 * Client micro-batching when something goes wrong (a server answering the wrong number of results,
 * close() with callers waiting, callers with different deadlines, a batch too large for the
 * server): each caller is to get its own answer or its own typed error, as without batching.
 */

const reason = (r: PromiseSettledResult<unknown>): unknown => (r as PromiseRejectedResult).reason;

interface Recorded {
  method: string;
  checks: string[];
}

/**
 * A server of the test's own for CheckLimits answers the real one never gives: `checkLimits`
 * answers each call; CheckLimit answers allowed.
 */
async function fakeServer(
  checkLimits: (
    checks: CheckLimitRequest[],
    answer: sendUnaryData<quotaV1.CheckLimitsResponse>,
  ) => void,
) {
  const server = new Server();
  const seen: Recorded[] = [];
  server.addService(quotaV1.QuotaServiceService, {
    checkLimit: (
      call: ServerUnaryCall<CheckLimitRequest, quotaV1.CheckLimitResponse>,
      answer: sendUnaryData<quotaV1.CheckLimitResponse>,
    ) => {
      seen.push({ method: 'CheckLimit', checks: [call.request.userId] });
      answer(null, allowed(call.request.userId));
    },
    checkLimits: (
      call: ServerUnaryCall<quotaV1.CheckLimitsRequest, quotaV1.CheckLimitsResponse>,
      answer: sendUnaryData<quotaV1.CheckLimitsResponse>,
    ) => {
      seen.push({ method: 'CheckLimits', checks: call.request.checks.map((c) => c.userId) });
      checkLimits(call.request.checks, answer);
    },
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { address: `127.0.0.1:${port}`, seen, stop: () => server.forceShutdown() };
}

/** An allowed answer that names its check in its rule, so that a misplaced one shows. */
function allowed(userId: string, padding = 0): quotaV1.CheckLimitResponse {
  return quotaV1.CheckLimitResponse.fromPartial({
    allowed: true,
    limits: [{ rule: `${userId}${'x'.repeat(padding)}`, limit: 10, remaining: 9 }],
  });
}

const results = (checks: CheckLimitRequest[]): quotaV1.CheckLimitResult[] =>
  checks.map((c) => ({ result: { $case: 'response', value: allowed(c.userId) } }));

/** The first call alone, then `n` more together as one CheckLimits call. */
function burst(conn: ReturnType<typeof connect>, n: number) {
  return Promise.allSettled(
    Array.from({ length: n + 1 }, (_, i) => conn.quota.checkLimit({ userId: `u-${i}` })),
  );
}

describe('client batching: a server that answers wrongly', () => {
  for (const [name, change] of [
    ['one result too few', (r: quotaV1.CheckLimitResult[]) => r.slice(0, -1)],
    ['one result too many', (r: quotaV1.CheckLimitResult[]) => [...r, r[0]!]],
  ] as const) {
    it(`fails every caller of a batch answered with ${name}, with INTERNAL`, async () => {
      const fake = await fakeServer((checks, answer) =>
        answer(null, { results: change(results(checks)) }),
      );
      const conn = connect({ address: fake.address, retry: false });
      try {
        const [first, ...batched] = await burst(conn, 5);
        expect(fake.seen.map((c) => c.method)).toEqual(['CheckLimit', 'CheckLimits']);
        expect(first!.status).toBe('fulfilled');
        for (const r of batched) {
          expect(r.status).toBe('rejected');
          expect(reason(r)).toBeInstanceOf(QuotaCallError);
          expect((reason(r) as QuotaCallError).code).toBe(status.INTERNAL);
        }
      } finally {
        conn.close();
        fake.stop();
      }
    });
  }

  it('gives each caller its own answer when the count is right', async () => {
    const fake = await fakeServer((checks, answer) => answer(null, { results: results(checks) }));
    const conn = connect({ address: fake.address, retry: false });
    try {
      const answers = await burst(conn, 5);
      const rules = answers.map(
        (r) => (r as PromiseFulfilledResult<quotaV1.CheckLimitResponse>).value.limits[0]!.rule,
      );
      expect(rules).toEqual(Array.from({ length: 6 }, (_, i) => `u-${i}`));
    } finally {
      conn.close();
      fake.stop();
    }
  });
});

// Under the client's maxBatchBytes (48 KiB): a large batch is refused as a whole, each of its
// checks alone is not.
const client = useRecordedServer(
  { QUOTA_DB_TIMEOUT_MS: '5000', QUOTA_MAX_MESSAGE_BYTES: '2048' },
  { retry: false },
);

describe('client batching: close()', () => {
  it('rejects the callers waiting for a batch at once, with QuotaCancelledError', async () => {
    const rec = checkRecorder();
    const conn = client(rec, { batching: { windowMs: 200 } });
    const events: string[] = [];
    // In flight at close(): it fails as grpc-js fails it, or is answered.
    const first = Promise.allSettled([conn.quota.checkLimit({ userId: 'close-first' })]);
    const waiting = Array.from({ length: 3 }, (_, i) =>
      conn.quota.checkLimit({ userId: `close-${i}` }).then(
        () => events.push(`answered ${i}`),
        (err: unknown) => {
          events.push(`rejected ${i}`);
          return err;
        },
      ),
    );
    conn.close();
    // By the next turn of the loop, long before the 200 ms window.
    await new Promise((resolve) => setImmediate(resolve));
    events.push('next turn');
    const errors = await Promise.all(waiting);
    await first;
    expect(events).toEqual(['rejected 0', 'rejected 1', 'rejected 2', 'next turn']);
    for (const err of errors) expect(err).toBeInstanceOf(QuotaCancelledError);
    await expect(conn.quota.checkLimit({ userId: 'close-after' })).rejects.toBeInstanceOf(
      QuotaCancelledError,
    );
    expect(rec.calls.flatMap((c) => c.checks)).toEqual(['close-first']);
  });
});

describe('client batching: deadlines', () => {
  it('fails only the caller whose deadline passed, not the rest of its batch', async () => {
    const rec = checkRecorder(true);
    const conn = client(rec);
    try {
      // The first goes at once, alone; the rest wait for it and go as one CheckLimits call.
      const first = conn.quota.checkLimit({ userId: 'deadline-a' });
      const patient = Array.from({ length: 5 }, () =>
        conn.quota.checkLimit({ userId: 'deadline-a' }, { deadlineMs: 10_000 }),
      );
      const short = conn.quota.checkLimit({ userId: 'deadline-a' }, { deadlineMs: 2 });
      // The batch is held until the short caller has failed: its 2 ms pass before it is sent.
      const shortResult = await Promise.allSettled([short]);
      rec.release();
      const results = await Promise.allSettled([first, ...patient]);
      expect(reason(shortResult[0]!)).toBeInstanceOf(QuotaDeadlineExceededError);
      expect(results.map((r) => r.status)).toEqual(Array(6).fill('fulfilled'));
      const batches = rec.calls.filter((c) => c.method === 'CheckLimits');
      expect(batches).toHaveLength(1);
      // The short caller too, unless its deadline had passed by the time the batch went.
      expect(batches[0]!.checks.length).toBeGreaterThanOrEqual(5);
      // Each patient caller has its own answer: counted once each (the short one was sent too,
      // as an unbatched call would have been, and may have been counted).
      const remaining = results.map(
        (r) => (r as PromiseFulfilledResult<quotaV1.CheckLimitResponse>).value.limits[0]!.remaining,
      );
      expect(new Set(remaining).size).toBe(6);
    } finally {
      conn.close();
    }
  });

  it('does not send a caller whose deadline passed while it waited for its batch', async () => {
    const rec = checkRecorder();
    const conn = client(rec, { batching: { windowMs: 200 } });
    try {
      const first = conn.quota.checkLimit({ userId: 'deadline-b' });
      const patient = conn.quota.checkLimit({ userId: 'deadline-b-patient' });
      const short = conn.quota.checkLimit({ userId: 'deadline-b-short' }, { deadlineMs: 5 });
      const results = await Promise.allSettled([first, patient, short]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      expect(reason(results[2]!)).toBeInstanceOf(QuotaDeadlineExceededError);
      const sent = rec.calls.flatMap((c) => c.checks);
      expect(sent).toEqual(['deadline-b', 'deadline-b-patient']);
    } finally {
      conn.close();
    }
  });
});

describe('client batching: a batch too large for the server', () => {
  it('sends each caller of a batch refused for its size alone', async () => {
    const rec = checkRecorder();
    const conn = client(rec);
    try {
      // About 220 bytes a check: 20 are over the server's 2048, each alone is under.
      const answers = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          conn.quota.checkLimit({ userId: `sized-${i}`, path: `/${'p'.repeat(200)}` }),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(20).fill('fulfilled'));
      const methods = rec.calls.map((c) => c.method);
      expect(methods.filter((m) => m === 'CheckLimits')).toHaveLength(1);
      // Each check decided once: the refused batch was decided by none.
      const decided = rec.calls.filter((c) => c.method === 'CheckLimit').flatMap((c) => c.checks);
      expect(decided.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `sized-${i}`).sort());
    } finally {
      conn.close();
    }
  });

  it('does not split a batch the server shed (RESOURCE_EXHAUSTED with a retry hint)', async () => {
    const fake = await fakeServer((_checks, answer) => {
      const metadata = new Metadata();
      metadata.set('grpc-retry-pushback-ms', '50');
      metadata.set('retry-after-ms', '50');
      answer({ code: status.RESOURCE_EXHAUSTED, details: 'overloaded', metadata });
    });
    const conn = connect({ address: fake.address, retry: false });
    try {
      const [, ...batched] = await burst(conn, 5);
      for (const r of batched) expect(reason(r)).toBeInstanceOf(QuotaResourceExhaustedError);
      expect(fake.seen.map((c) => c.method)).toEqual(['CheckLimit', 'CheckLimits']);
    } finally {
      conn.close();
      fake.stop();
    }
  });

  it('does not send again a batch whose answer was too large for the client (it was decided)', async () => {
    const fake = await fakeServer((checks, answer) =>
      answer(null, {
        results: checks.map((c) => ({
          result: { $case: 'response', value: allowed(c.userId, 400) },
        })),
      }),
    );
    const conn = connect({
      address: fake.address,
      retry: false,
      channelOptions: { 'grpc.max_receive_message_length': 1024 },
    });
    try {
      const [first, ...batched] = await burst(conn, 5);
      expect(first!.status).toBe('fulfilled');
      for (const r of batched) expect(reason(r)).toBeInstanceOf(QuotaResourceExhaustedError);
      expect(fake.seen.map((c) => c.method)).toEqual(['CheckLimit', 'CheckLimits']);
    } finally {
      conn.close();
      fake.stop();
    }
  });
});
