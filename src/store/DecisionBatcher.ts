import { StoreUnavailableError } from '../errors.js';

/** Options of {@link DecisionBatcher}. Times in ms. */
export interface DecisionBatcherOptions<Item, Answer> {
  /**
   * Decides a batch in one round trip; resolves with one answer per item, in the batch's order.
   * `deadline` (on the `performance.now()` clock) is when the batch must be decided or given up:
   * past it, the earliest caller in the batch may already have been told it failed, so the
   * decision MUST NOT take effect after it. A rejection fails every item of the batch.
   */
  readonly decide: (batch: readonly Item[], deadline: number) => Promise<readonly Answer[]>;
  /** Items with different keys never share a batch (a time zone, a commit mode...). */
  readonly batchKey: (item: Item) => string;
  /**
   * Items with one key never share a batch: within one statement both would be decided, while
   * in separate batches the second finds the first's answer. null: no key.
   */
  readonly idempotencyKey: (item: Item) => string | null;
  /** A caller has its answer within this, queueing included: past it, StoreUnavailableError. */
  readonly answerWithinMs: number;
  /**
   * Kept back from the earliest caller's deadline when a batch is sent: the time an answer
   * needs to travel back and reach the caller after the store has committed. @default 0
   */
  readonly marginMs?: number;
  /** Batches in flight at once. @default 2 */
  readonly maxInFlight?: number;
  /** Items per batch at most. @default 256 */
  readonly maxBatch?: number;
}

interface Pending<Item, Answer> {
  readonly item: Item;
  /** When the caller is to have its answer, on the performance.now() clock. */
  readonly deadline: number;
  readonly resolve: (answer: Answer) => void;
  readonly reject: (err: unknown) => void;
  settled: boolean;
  timer: NodeJS.Timeout;
}

/**
 * Puts decisions together: items that arrive while `maxInFlight` batches are in flight wait and
 * go together in the next batch, so that one round trip, one lock per row and one commit serve
 * many decisions. An idle batcher sends an item at once: batching adds no latency when there is
 * nothing to batch. Every caller has an answer within `answerWithinMs`, the timeout included.
 */
export class DecisionBatcher<Item, Answer> {
  private readonly queue: Pending<Item, Answer>[] = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxBatch: number;
  private readonly marginMs: number;

  constructor(private readonly options: DecisionBatcherOptions<Item, Answer>) {
    this.maxInFlight = options.maxInFlight ?? 2;
    this.maxBatch = options.maxBatch ?? 256;
    this.marginMs = options.marginMs ?? 0;
  }

  /** Resolves with the item's answer, or rejects with the batch's error or on timeout. */
  submit(item: Item): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const within = this.options.answerWithinMs;
      const pending: Pending<Item, Answer> = {
        item,
        deadline: performance.now() + within,
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => {
          // One turn of the event loop first: an answer already received, waiting behind a busy
          // loop, has been committed and must reach the caller instead of the failure.
          setImmediate(() => {
            settle(pending, () =>
              reject(new StoreUnavailableError(`no decision within ${within} ms`)),
            );
            const i = this.queue.indexOf(pending);
            if (i >= 0) this.queue.splice(i, 1);
          });
        }, within),
      };
      this.queue.push(pending);
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.takeBatch();
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  /** The next batch: one batch key, each idempotency key at most once (retries wait a turn). */
  private takeBatch(): Pending<Item, Answer>[] {
    const batch: Pending<Item, Answer>[] = [];
    const keys = new Set<string>();
    const batchKey = this.options.batchKey(this.queue[0]!.item);
    for (let i = 0; i < this.queue.length && batch.length < this.maxBatch;) {
      const p = this.queue[i]!;
      const idem = this.options.idempotencyKey(p.item);
      if (this.options.batchKey(p.item) !== batchKey || (idem !== null && keys.has(idem))) {
        i += 1;
        continue;
      }
      if (idem !== null) keys.add(idem);
      batch.push(p);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private async run(batch: readonly Pending<Item, Answer>[]): Promise<void> {
    const now = performance.now();
    const live: Pending<Item, Answer>[] = [];
    for (const p of batch) {
      if (p.settled) continue;
      // A caller whose time is (nearly) up could not get an answer that counts in time: it gets
      // the timeout now rather than cutting the whole batch's time short.
      if (p.deadline - this.marginMs <= now) {
        settle(p, () =>
          p.reject(new StoreUnavailableError('no time left to decide before the caller gives up')),
        );
      } else {
        live.push(p);
      }
    }
    if (live.length === 0) return;
    const deadline = Math.min(...live.map((p) => p.deadline)) - this.marginMs;
    try {
      const answers = await this.options.decide(
        live.map((p) => p.item),
        deadline,
      );
      live.forEach((p, i) =>
        settle(p, () =>
          i < answers.length
            ? p.resolve(answers[i] as Answer)
            : p.reject(new Error(`decide answered ${answers.length} of ${live.length} items`)),
        ),
      );
    } catch (err) {
      for (const p of live) settle(p, () => p.reject(err));
    }
  }
}

function settle<Item, Answer>(p: Pending<Item, Answer>, fn: () => void): void {
  if (p.settled) return;
  p.settled = true;
  clearTimeout(p.timer);
  fn();
}
