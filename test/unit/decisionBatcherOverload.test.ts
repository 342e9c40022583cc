import { afterEach, describe, expect, it, vi } from 'vitest';
import { OverloadedError, StoreUnavailableError } from '../../src/errors.js';
import {
  DecisionTooLateError,
  type DecisionBatcherOptions,
} from '../../src/store/DecisionBatcher.js';
import {
  batcher as harnessBatcher,
  flush,
  manualDecide,
  outcome,
  type Item,
} from '../support/batcherHarness.js';

// Every test here runs on fake timers: what is asserted is which answer each caller gets and
// which batches the store was sent, never how long anything took.

/** The batcher of the harness, answering within 100 ms. */
const batcher = (
  decide: DecisionBatcherOptions<Item, string>['decide'],
  options: Partial<DecisionBatcherOptions<Item, string>> = {},
) => harnessBatcher(decide, { answerWithinMs: 100, ...options });

afterEach(() => {
  vi.useRealTimers();
});

describe('a caller not decided in time', () => {
  it('is shed (OverloadedError with a retry hint) when the store answered a batch sent after it came', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1, maxBatch: 1 });
    const a = b.submit({ id: 'a' });
    const second = b.submit({ id: 'b' });
    const third = outcome(b.submit({ id: 'c' }));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]!.answer();
    await flush();
    // 'b' went after 'c' came; its answer shows the store answering while 'c' waits its turn.
    await vi.advanceTimersByTimeAsync(10);
    calls[1]!.answer();
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b'], ['c']]);
    await vi.advanceTimersByTimeAsync(100);
    const err = await third;
    expect(err).toBeInstanceOf(OverloadedError);
    expect((err as OverloadedError).retryAfterMs).toBeGreaterThanOrEqual(100);
    expect(await a).toBe('ok:a');
    expect(await second).toBe('ok:b');
  });

  it('is shed when the store answered while it waited, though its own batch, sent late, was too late', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const first = b.submit({ id: 'first' });
    // Read in the same burst: they wait for the first batch, which the store answers late.
    const behind = ['b1', 'b2'].map((id) => outcome(b.submit({ id })));
    await vi.advanceTimersByTimeAsync(60);
    calls[0]!.answer();
    expect(await first).toBe('ok:first');
    await flush();
    expect(calls[1]!.items).toEqual(['b1', 'b2']);
    // Sent with the 40 ms they had left, and not decided in them: the time went to the queue.
    await vi.advanceTimersByTimeAsync(35);
    calls[1]!.fail(new DecisionTooLateError('deadline passed'));
    await vi.advanceTimersByTimeAsync(10);
    for (const err of await Promise.all(behind)) {
      expect(err).toBeInstanceOf(OverloadedError);
      expect(err).not.toBeInstanceOf(StoreUnavailableError);
    }
  });

  it('gets StoreUnavailableError (the failure mode) when the store answered nothing since it came', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const before = b.submit({ id: 'before' });
    await vi.advanceTimersByTimeAsync(10);
    calls[0]!.answer();
    expect(await before).toBe('ok:before');
    // The store answered, but not since these came: one hangs in flight, one queued behind it.
    const inFlight = outcome(b.submit({ id: 'stuck' }));
    const queued = outcome(b.submit({ id: 'queued' }));
    await vi.advanceTimersByTimeAsync(101);
    expect(await inFlight).toBeInstanceOf(StoreUnavailableError);
    expect(await queued).toBeInstanceOf(StoreUnavailableError);
    expect(await inFlight).not.toBeInstanceOf(OverloadedError);
  });

  it('is shed when the event loop was busy for most of its wait, answered or not', async () => {
    vi.useFakeTimers();
    const { decide } = manualDecide();
    // Every fake millisecond counts as the loop running code: the answer may be there, unread.
    const b = batcher(decide, { maxInFlight: 1, loopBusyMs: () => performance.now() });
    const inFlight = outcome(b.submit({ id: 'a' }));
    const queued = outcome(b.submit({ id: 'b' }));
    await vi.advanceTimersByTimeAsync(101);
    expect(await inFlight).toBeInstanceOf(OverloadedError);
    expect(await queued).toBeInstanceOf(OverloadedError);
  });

  it('gets the failure mode at once from a store that refuses at once, however busy the loop', async () => {
    vi.useFakeTimers();
    const down = new StoreUnavailableError('database is not answering');
    const b = batcher(() => Promise.reject(down), { loopBusyMs: () => performance.now() });
    expect(await outcome(b.submit({ id: 'a' }))).toBe(down);
  });
});

describe('admission', () => {
  /**
   * A queue whose pace is measured: 'a' answered after 50 ms and 'b' after 100; 'c' is sent
   * then, having waited 100 ms for one position. 27 callers are left in the queue.
   */
  async function measured() {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1, maxBatch: 1, answerWithinMs: 1000 });
    const queued = Array.from({ length: 30 }, (_, i) => outcome(b.submit({ id: `q${i}` })));
    await vi.advanceTimersByTimeAsync(50);
    calls[0]!.answer();
    await vi.advanceTimersByTimeAsync(50);
    calls[1]!.answer();
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['q0'], ['q1'], ['q2']]);
    return { b, calls, queued };
  }

  it('refuses at once a caller the measured pace cannot serve in time', async () => {
    // One position per 100 ms and 27 callers ahead: 2.7 s and more, against 1 s.
    const { b, calls, queued } = await measured();
    const late = outcome(b.submit({ id: 'late' }));
    await flush();
    const err = await late;
    expect(err).toBeInstanceOf(OverloadedError);
    expect((err as OverloadedError).retryAfterMs).toBeGreaterThanOrEqual(2700);
    // It was never queued: no batch carries it.
    for (let i = 2; i < 30; i++) {
      calls[i]?.answer();
      await flush();
    }
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(queued);
    expect(calls.flatMap((c) => c.items)).not.toContain('late');
  });

  it('queues every caller while the store has not answered lately', async () => {
    const { b, calls } = await measured();
    // 'q2' hangs; fresh callers queue behind it, a second after the last answer.
    await vi.advanceTimersByTimeAsync(1010);
    const fresh = Array.from({ length: 30 }, (_, i) => outcome(b.submit({ id: `f${i}` })));
    const late = outcome(b.submit({ id: 'late' }));
    await flush();
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1001);
    for (const err of [await late, ...(await Promise.all(fresh))]) {
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err).not.toBeInstanceOf(OverloadedError);
    }
  });
});

describe('a batch the store refuses', () => {
  const bad = new Error('invalid byte sequence for encoding "UTF8": 0x00');
  /** Refuses any batch holding an item whose id starts with "bad". */
  const picky = () => {
    const sent: string[][] = [];
    const decide = async (batch: readonly Item[]) => {
      sent.push(batch.map((i) => i.id));
      if (batch.some((i) => i.id.startsWith('bad'))) throw bad;
      return batch.map((i) => `ok:${i.id}`);
    };
    return { sent, decide };
  };

  it('is decided again in halves: the good items are decided, the bad one alone gets an error', async () => {
    const { sent, decide } = picky();
    class ItemError extends Error {}
    const b = batcher(decide, {
      maxInFlight: 1,
      answerWithinMs: 10_000,
      itemError: (err, item) => new ItemError(`${item.id}: ${String(err)}`),
    });
    const ids = ['g1', 'g2', 'bad1', 'g3', 'g4', 'g5', 'bad2', 'g6'];
    const answers = await Promise.all(ids.map((id) => outcome(b.submit({ id }))));
    ids.forEach((id, i) => {
      if (id.startsWith('bad')) {
        expect(answers[i]).toBeInstanceOf(ItemError);
        expect(String(answers[i])).toContain(id);
      } else {
        expect(answers[i]).toBe(`ok:${id}`);
      }
    });
    // 'g1' alone first (the batcher was idle), then the other seven, split down to the bad ones.
    expect(sent[0]).toEqual(['g1']);
    expect(sent[1]).toEqual(['g2', 'bad1', 'g3', 'g4', 'g5', 'bad2', 'g6']);
    expect(sent.filter((s) => s.length === 1 && s[0]!.startsWith('bad'))).toHaveLength(2);
    // Each good item was decided exactly once.
    const decided = sent.filter((s) => !s.some((id) => id.startsWith('bad'))).flat();
    expect(decided.sort()).toEqual(['g1', 'g2', 'g3', 'g4', 'g5', 'g6']);
  });

  it('is not split when the error cannot come from an item: every item gets it', async () => {
    const { sent, decide } = picky();
    const b = batcher(decide, { maxInFlight: 1, answerWithinMs: 10_000, isolate: () => false });
    const busy = outcome(b.submit({ id: 'bad-busy' }));
    const rest = ['g1', 'bad', 'g2'].map((id) => outcome(b.submit({ id })));
    expect(await busy).toBe(bad);
    expect(await Promise.all(rest)).toEqual([bad, bad, bad]);
    expect(sent).toEqual([['bad-busy'], ['g1', 'bad', 'g2']]);
  });

  it('is not split when the store is unavailable', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const busy = outcome(b.submit({ id: 'busy' }));
    const rest = ['x', 'y'].map((id) => outcome(b.submit({ id })));
    const down = new StoreUnavailableError('database unreachable');
    calls[0]!.fail(down);
    await flush();
    calls[1]!.fail(down);
    expect(await busy).toBe(down);
    expect(await Promise.all(rest)).toEqual([down, down]);
    expect(calls.map((c) => c.items)).toEqual([['busy'], ['x', 'y']]);
  });
});

describe('a batch decided too late', () => {
  it('answers its earliest caller and decides the others again', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const first = b.submit({ id: 'first' });
    await vi.advanceTimersByTimeAsync(10);
    const early = outcome(b.submit({ id: 'early' }));
    await vi.advanceTimersByTimeAsync(50);
    const later = b.submit({ id: 'later' });
    calls[0]!.answer();
    await flush();
    expect(calls[1]!.items).toEqual(['early', 'later']);
    await vi.advanceTimersByTimeAsync(10);
    const tooLate = new DecisionTooLateError('lock wait past the deadline');
    calls[1]!.fail(tooLate);
    await flush();
    // Nothing took effect: 'later', with time left, goes again, on its own deadline.
    expect(calls[2]!.items).toEqual(['later']);
    expect(calls[2]!.deadline).toBe(calls[1]!.deadline + 50);
    calls[2]!.answer();
    expect(await first).toBe('ok:first');
    expect(await later).toBe('ok:later');
    // The store answered 'first' while 'early' queued: half its time went to the queue, and it
    // is shed (with a retry hint), not given the failure mode.
    expect(await early).toBeInstanceOf(OverloadedError);
  });
});

describe('a batch the store did not decide in time', () => {
  it("gives the failure mode to a caller sent at once, whose whole time was the store's", async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const before = b.submit({ id: 'before' });
    await vi.advanceTimersByTimeAsync(5);
    calls[0]!.answer();
    expect(await before).toBe('ok:before');
    await vi.advanceTimersByTimeAsync(5);
    const alone = outcome(b.submit({ id: 'alone' }));
    await flush();
    await vi.advanceTimersByTimeAsync(99);
    const tooLate = new DecisionTooLateError('lock wait past the deadline');
    calls[1]!.fail(tooLate);
    expect(await alone).toBe(tooLate);
  });

  it('gives the failure mode when the store says it cannot decide, however long the caller queued', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const first = b.submit({ id: 'first' });
    const queued = outcome(b.submit({ id: 'queued' }));
    await vi.advanceTimersByTimeAsync(60);
    calls[0]!.answer();
    expect(await first).toBe('ok:first');
    await flush();
    const readOnly = new StoreUnavailableError('database cannot decide: read-only transaction');
    calls[1]!.fail(readOnly);
    expect(await queued).toBe(readOnly);
  });
});

describe('a batch whose callers have very different time left', () => {
  it('sends the callers with the most time first, on their own deadline, and the others after', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1 });
    const t0 = performance.now();
    const first = b.submit({ id: 'first' });
    const old = ['o1', 'o2'].map((id) => b.submit({ id }));
    // A busy loop or a long queue: 80 of their 100 ms are gone when the next batch goes.
    await vi.advanceTimersByTimeAsync(80);
    const fresh = ['n1', 'n2'].map((id) => b.submit({ id }));
    calls[0]!.answer();
    await flush();
    expect(calls[1]!.items).toEqual(['n1', 'n2']);
    expect(calls[1]!.deadline).toBe(t0 + 180);
    calls[1]!.answer();
    await flush();
    expect(calls[2]!.items).toEqual(['o1', 'o2']);
    expect(calls[2]!.deadline).toBe(t0 + 100);
    calls[2]!.answer();
    expect(await Promise.all([first, ...old, ...fresh])).toEqual(
      ['first', 'o1', 'o2', 'n1', 'n2'].map((id) => `ok:${id}`),
    );
  });
});

describe('batches in flight', () => {
  it('sends more than maxInFlight (twice as many at most) while overflowAt callers wait', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1, maxBatch: 3, overflowAt: 3 });
    const all = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id) => b.submit({ id }));
    // 'a' went alone; 'b' to 'd' made three waiting (overflowAt, a full batch): a second batch
    // at once, but never a third: 'e' to 'h' wait for a batch to end.
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c', 'd']]);
    calls[0]!.answer();
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c', 'd'], ['e', 'f', 'g']]);
    calls[1]!.answer();
    calls[2]!.answer();
    await flush();
    expect(calls.map((c) => c.items)).toEqual([['a'], ['b', 'c', 'd'], ['e', 'f', 'g'], ['h']]);
    calls[3]!.answer();
    await Promise.all(all);
  });
});

describe('batch size', () => {
  it('puts many decisions on shared keys in one batch, and at most maxBatch distinct keys', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, {
      maxInFlight: 1,
      maxBatch: 2,
      maxItems: 300,
      sharedKeys: (i) => [i.key ?? i.id],
    });
    const busy = b.submit({ id: 'busy' });
    const hot = Array.from({ length: 400 }, (_, i) => b.submit({ id: `h${i}`, key: 'hot' }));
    const distinct = ['k1', 'k2', 'k3'].map((id) => b.submit({ id }));
    for (let i = 0; i < 4; i++) {
      calls[i]!.answer();
      await flush();
    }
    await Promise.all([busy, ...hot, ...distinct]);
    expect(calls.map((c) => c.items.length)).toEqual([1, 300, 101, 2]);
    // A hot-key batch with room for one more key takes the first distinct one along.
    expect(calls[2]!.items.at(-1)).toBe('k1');
    expect(calls[3]!.items).toEqual(['k2', 'k3']);
  });
});
