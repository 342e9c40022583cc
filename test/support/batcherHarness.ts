import { vi } from 'vitest';
import { DecisionBatcher, type DecisionBatcherOptions } from '../../src/store/DecisionBatcher.js';

/** What the DecisionBatcher unit tests submit: `zone` is the batch key, `key` a shared key. */
export interface Item {
  readonly id: string;
  readonly zone?: string;
  readonly idem?: string;
  readonly key?: string;
}

/** A decide step the test completes by hand, batch by batch. */
export function manualDecide() {
  const calls: {
    items: string[];
    deadline: number;
    answer: (answers?: string[]) => void;
    fail: (err: unknown) => void;
  }[] = [];
  const decide = (batch: readonly Item[], deadline: number) =>
    new Promise<string[]>((resolve, reject) => {
      const items = batch.map((i) => i.id);
      calls.push({
        items,
        deadline,
        answer: (answers) => resolve(answers ?? items.map((id) => `ok:${id}`)),
        fail: reject,
      });
    });
  return { calls, decide };
}

/** A batcher of Items that answers within 1 s unless `options` say otherwise. */
export function batcher(
  decide: DecisionBatcherOptions<Item, string>['decide'],
  options: Partial<DecisionBatcherOptions<Item, string>> = {},
) {
  return new DecisionBatcher<Item, string>({
    decide,
    batchKey: (i) => i.zone ?? 'UTC',
    idempotencyKey: (i) => i.idem ?? null,
    answerWithinMs: 1000,
    // Fake timers move the clock without running the loop: it is idle throughout.
    loopBusyMs: () => 0,
    ...options,
  });
}

/** Lets pending promise callbacks and immediates run (fake timers do not advance on their own). */
export const flush = () => vi.advanceTimersByTimeAsync(0);

/** What a submitted item settled with: its answer, or the error it was rejected with. */
export const outcome = (p: Promise<string>) => p.catch((e: unknown) => e);
