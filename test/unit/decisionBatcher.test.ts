import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OverloadedError, StoreUnavailableError } from '../../src/errors.js';
import { batcher, flush, manualDecide } from '../support/batcherHarness.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('DecisionBatcher', () => {
  it('sends an idle item at once and puts items that arrive meanwhile in the next batch', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const first = b.submit({ id: 'a' });
    expect(calls.map((c) => c.items)).toEqual([['a']]);
    const rest = ['b', 'c', 'd'].map((id) => b.submit({ id }));
    expect(calls).toHaveLength(1);
    calls[0]!.answer();
    expect(await first).toBe('ok:a');
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c', 'd']]);
    calls[1]!.answer();
    expect(await Promise.all(rest)).toEqual(['ok:b', 'ok:c', 'ok:d']);
  });

  it('keeps maxInFlight batches in flight and at most maxBatch items in each', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 2, maxBatch: 2 });
    const all = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => b.submit({ id }));
    // a is sent at once, the store being idle; b and c, a full batch, go at once too.
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c']]);
    calls[0]!.answer();
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
    calls[1]!.answer();
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c'], ['d', 'e'], ['f']]);
    calls[2]!.answer();
    calls[3]!.answer();
    expect(await Promise.all(all)).toEqual(['a', 'b', 'c', 'd', 'e', 'f'].map((x) => `ok:${x}`));
  });

  it('with a batch in flight and less than a full one waiting, waits one turn to gather', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 2, maxBatch: 10 });
    const all = ['a', 'b', 'c', 'd'].map((id) => b.submit({ id }));
    // a goes at once (the store was idle); b alone would pay a round trip for one decision.
    expect(calls.map((c) => c.items)).toEqual([['a']]);
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c', 'd']]);
    calls[0]!.answer();
    calls[1]!.answer();
    expect(await Promise.all(all)).toEqual(['a', 'b', 'c', 'd'].map((x) => `ok:${x}`));
  });

  it('never puts two batch keys or one idempotency key twice in a batch', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const all = [
      b.submit({ id: 'busy' }),
      b.submit({ id: 'r1', idem: 'k' }),
      b.submit({ id: 'ny', zone: 'America/New_York' }),
      b.submit({ id: 'r2', idem: 'k' }),
      b.submit({ id: 'other', idem: 'j' }),
      b.submit({ id: 'ny2', zone: 'America/New_York' }),
    ];
    for (let i = 0; i < 4; i++) {
      calls[i]!.answer();
      await flush();
    }
    expect(calls.map((c) => c.items)).toEqual([
      ['busy'],
      ['r1', 'other'],
      ['ny', 'ny2'],
      // The retry waited for the first answer: the store can find it now.
      ['r2'],
    ]);
    await Promise.all(all);
  });

  it('answers a caller StoreUnavailableError after answerWithinMs, queued or in flight', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1, answerWithinMs: 100 });
    const inFlight = b.submit({ id: 'a' });
    const queued = b.submit({ id: 'b' });
    const errors = Promise.all([
      inFlight.catch((e: unknown) => e),
      queued.catch((e: unknown) => e),
    ]);
    // The timer gives an answer already received one more turn of the loop (an immediate, which
    // fake timers run only once the clock moves on).
    await vi.advanceTimersByTimeAsync(101);
    const [e1, e2] = await errors;
    expect(e1).toBeInstanceOf(StoreUnavailableError);
    expect(e2).toBeInstanceOf(StoreUnavailableError);
    // The queued caller left the queue: the next batch does not decide it.
    calls[0]!.answer();
    await flush();
    expect(calls).toHaveLength(1);
  });

  it("gives decide the earliest caller's deadline less the margin", async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1, answerWithinMs: 100, marginMs: 10 });
    const t0 = performance.now();
    const first = b.submit({ id: 'first' });
    expect(calls[0]!.deadline).toBe(t0 + 90);
    await vi.advanceTimersByTimeAsync(20);
    const a = b.submit({ id: 'a' });
    await vi.advanceTimersByTimeAsync(30);
    const c = b.submit({ id: 'c' });
    calls[0]!.answer();
    await flush();
    expect(calls[1]!.items).toEqual(['a', 'c']);
    expect(calls[1]!.deadline).toBe(t0 + 20 + 90);
    calls[1]!.answer();
    expect(await Promise.all([first, a, c])).toEqual(['ok:first', 'ok:a', 'ok:c']);
  });

  it('does not send callers with no time left, and sends the others with their own deadline', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1, answerWithinMs: 100, marginMs: 10 });
    const t0 = performance.now();
    const first = b.submit({ id: 'first' }).catch((e: unknown) => e);
    const late = b.submit({ id: 'late' }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    const onTime = b.submit({ id: 'on-time' });
    // 'late' has 10 ms left, all of it margin, when the first batch ends: the store answered
    // while it queued, so the time it lacked went to the queue, and it is shed.
    await vi.advanceTimersByTimeAsync(40);
    calls[0]!.answer();
    expect(await late).toBeInstanceOf(OverloadedError);
    expect(calls.map((c) => c.items)).toEqual([['first'], ['on-time']]);
    expect(calls[1]!.deadline).toBe(t0 + 50 + 90);
    calls[1]!.answer();
    expect(await first).toBe('ok:first');
    expect(await onTime).toBe('ok:on-time');
  });

  it('fails every item of a failed batch, and an item decide gave no answer', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const busy = b.submit({ id: 'busy' });
    const x = b.submit({ id: 'x' }).catch((e: unknown) => e);
    const y = b.submit({ id: 'y' }).catch((e: unknown) => e);
    const boom = new Error('boom');
    calls[0]!.fail(boom);
    await expect(busy).rejects.toBe(boom);
    await flush();
    calls[1]!.answer(['only-x']);
    expect(await x).toBe('only-x');
    expect(await y).toBeInstanceOf(Error);
    expect(String(await y)).toContain('1 of 2');
  });

  it('gives a caller the answer already received when its timer fires behind a busy loop', async () => {
    // Real timers and a real socket: the answer's bytes are in when the loop gets to run again,
    // after the caller's time is up. The answer was committed, so the caller must have it.
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect(port, '127.0.0.1');
    const serverSide = await accepted;
    try {
      const b = batcher(
        () => {
          const answered = new Promise<string[]>((r) => client.once('data', () => r(['answer'])));
          serverSide.write('x');
          const until = performance.now() + 100;
          while (performance.now() < until) {
            // Busy: the loop cannot run the 20 ms timer nor read the socket until this ends.
          }
          return answered;
        },
        { answerWithinMs: 20 },
      );
      expect(await b.submit({ id: 'a' })).toBe('answer');
    } finally {
      client.destroy();
      serverSide.destroy();
      server.close();
    }
  });
});
