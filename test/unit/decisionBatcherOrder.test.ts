import { afterEach, describe, expect, it, vi } from 'vitest';
import { OverloadedError } from '../../src/errors.js';
import { batcher, flush, manualDecide, outcome } from '../support/batcherHarness.js';

// Items on one shared key count in the order they came: the store decides a batch in its order,
// so what is asserted is which items each batch holds, and when it is sent.

afterEach(() => {
  vi.useRealTimers();
});

describe('items on one shared key', () => {
  it('wait behind an earlier item on that key that did not fit in the batch', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, {
      maxInFlight: 1,
      maxBatch: 2,
      sharedKeys: (i) => (i.key ?? i.id).split('+'),
    });
    const busy = b.submit({ id: 'busy' });
    // 'a' and 'b' fill the next batch; 'c+A' does not fit; 'A-again' is on A, 'd' on nothing.
    const rest = [
      b.submit({ id: 'a', key: 'A' }),
      b.submit({ id: 'b', key: 'B' }),
      b.submit({ id: 'c', key: 'C+A' }),
      b.submit({ id: 'A-again', key: 'A' }),
      b.submit({ id: 'b-again', key: 'B' }),
    ];
    for (let i = 0; i < 3; i++) {
      calls[i]!.answer();
      await flush();
    }
    await Promise.all([busy, ...rest]);
    // 'A-again' came after 'c', which holds A: it goes with 'c', never before it.
    expect(calls.map((c) => c.items)).toEqual([['busy'], ['a', 'b', 'b-again'], ['c', 'A-again']]);
  });

  it('of one together() call go one batch at a time while one of them is at the store', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, {
      maxInFlight: 2,
      maxBatch: 2,
      sharedKeys: (i) => (i.key ?? i.id).split('+'),
    });
    // Each check on its user and on a hot resource: two keys a batch at most, one check each.
    const answers = b.together(() =>
      ['u1', 'u2', 'u3'].map((u) => b.submit({ id: u, key: `${u}+hot` })),
    );
    // Another caller's item on a key of its own is not held back by them.
    const other = b.submit({ id: 'other', key: 'elsewhere' });
    await flush();
    // With room for two batches, a second with 'u2' would race the first for 'hot': it waits.
    expect(calls.map((c) => c.items)).toEqual([['u1'], ['other']]);
    calls[0]!.answer();
    await flush();
    expect(calls[2]!.items).toEqual(['u2']);
    calls[1]!.answer();
    calls[2]!.answer();
    await flush();
    expect(calls[3]!.items).toEqual(['u3']);
    calls[3]!.answer();
    expect(await Promise.all(answers)).toEqual(['ok:u1', 'ok:u2', 'ok:u3']);
    expect(await other).toBe('ok:other');
  });

  it('of one together() call are not refused for the backlog their own call makes', async () => {
    vi.useFakeTimers();
    const { calls, decide } = manualDecide();
    const b = batcher(decide, { maxInFlight: 1, maxBatch: 1, answerWithinMs: 1000 });
    // A measured pace of one position per 100 ms: 20 callers of another's would be refused.
    const first = ['p0', 'p1', 'p2'].map((id) => b.submit({ id }));
    await vi.advanceTimersByTimeAsync(100);
    calls[0]!.answer();
    await vi.advanceTimersByTimeAsync(100);
    calls[1]!.answer();
    await vi.advanceTimersByTimeAsync(100);
    calls[2]!.answer();
    await Promise.all(first);
    const mine = b.together(() =>
      Array.from({ length: 20 }, (_, i) => outcome(b.submit({ id: `m${i}` }))),
    );
    await flush();
    for (let i = 3; i < calls.length + 1 && i < 23; i++) {
      calls[i]!.answer();
      await flush();
    }
    const got = await Promise.all(mine);
    expect(got.filter((g) => g instanceof OverloadedError)).toEqual([]);
    expect(got).toHaveLength(20);
  });
});
