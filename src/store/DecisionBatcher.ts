import { StoreTimeoutError, StoreUnavailableError } from '../errors.js';
import { BacklogMeter, type Arrival } from './BacklogMeter.js';

/**
 * decide's rejection when its deadline passed before the store decided: nothing took effect, so
 * the batch's callers that still have time are decided again.
 */
export class DecisionTooLateError extends StoreTimeoutError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DecisionTooLateError';
  }
}

/** Options of {@link DecisionBatcher}. Times in ms. */
export interface DecisionBatcherOptions<Item, Answer> {
  /**
   * Decides a batch in one round trip; resolves with one answer per item, in the batch's order.
   * `deadline` (on the `performance.now()` clock) is when the batch must be decided or given up:
   * past it, the earliest caller in the batch may already have been told it failed, so the
   * decision MUST NOT take effect after it. Rejects with DecisionTooLateError when the deadline
   * passed first, with StoreUnavailableError when the store cannot be reached; any other
   * rejection is taken as the store refusing the batch, possibly for one item's sake (see
   * `isolate`). Nothing of a rejected batch may take effect.
   */
  readonly decide: (batch: readonly Item[], deadline: number) => Promise<readonly Answer[]>;
  /** Items with different keys never share a batch (a time zone, a commit mode...). */
  readonly batchKey: (item: Item) => string;
  /**
   * Items with one key never share a batch: within one statement both would be decided, while
   * in separate batches the second finds the first's answer. null: no key.
   */
  readonly idempotencyKey: (item: Item) => string | null;
  /**
   * What an item's decision locks (its counters). A batch holds at most `maxBatch` distinct
   * ones, and any number of items on them up to `maxItems`: decisions on one hot key share one
   * lock and one write, so a burst on it is decided in few statements. Unset: each item counts
   * as one, and a batch holds at most `maxBatch` items.
   */
  readonly sharedKeys?: (item: Item) => readonly string[];
  /**
   * A caller has an answer within this, queueing included. Past it, the caller gets
   * OverloadedError when its wait was this service's own backlog, StoreUnavailableError when it
   * was the store's (see BacklogMeter).
   */
  readonly answerWithinMs: number;
  /**
   * Kept back from the earliest caller's deadline when a batch is sent: the time an answer
   * needs to travel back and reach the caller after the store has committed. @default 0
   */
  readonly marginMs?: number;
  /** Batches in flight at once. @default 2 */
  readonly maxInFlight?: number;
  /**
   * Callers waiting from which another maxInFlight batches may go, while the first ones are in
   * flight. @default never
   */
  readonly overflowAt?: number;
  /** Distinct shared keys per batch at most (items, without `sharedKeys`). @default 256 */
  readonly maxBatch?: number;
  /** Items per batch at most, with `sharedKeys`. @default 4 × maxBatch */
  readonly maxItems?: number;
  /**
   * Whether a rejection of decide may come from one item of the batch: the batch is then
   * decided again in halves, down to the items that fail alone, which alone get an error.
   * StoreUnavailableError never is. @default every other error
   */
  readonly isolate?: (err: unknown) => boolean;
  /** The error an item that fails alone is answered with. @default the error itself */
  readonly itemError?: (err: unknown, item: Item) => unknown;
  /**
   * Time the event loop has spent running code (not waiting for I/O), cumulative, in ms: a
   * caller that waited while the loop was busy waited for this process, not for the store.
   * @default performance.eventLoopUtilization().active
   */
  readonly loopBusyMs?: () => number;
}

interface Pending<Item, Answer> {
  readonly item: Item;
  readonly arrival: Arrival;
  /** When the caller is to have its answer, on the performance.now() clock. */
  readonly deadline: number;
  /** Undecided items queued when it arrived: with its wait, how fast the queue moves. */
  readonly ahead: number;
  /** The together() call it was submitted in (0: none): its items count in the order given. */
  readonly group: number;
  /** Its shared keys (none without `sharedKeys`), worked out once. */
  readonly keys: readonly string[];
  readonly resolve: (answer: Answer) => void;
  readonly reject: (err: unknown) => void;
  /** In the queue (not in a batch). */
  queued: boolean;
  /** Back in the queue after its batch was too late: its wait no longer measures the queue. */
  retried: boolean;
  settled: boolean;
  timer: NodeJS.Timeout;
}

/**
 * Puts decisions together: items that arrive while `maxInFlight` batches are in flight wait and
 * go together in the next batch, so that one round trip, one lock per row and one commit serve
 * many decisions. An idle batcher sends an item at once: batching adds no latency when there is
 * nothing to batch. Every caller has an answer within `answerWithinMs`, the timeout included.
 *
 * Two kinds of "not in time" are kept apart. A store that does not answer is an outage:
 * StoreUnavailableError, which callers answer with the failure mode. A queue longer than the
 * time allows, while the store answers, is this service's own overload: OverloadedError, so
 * that no burst is ever admitted by the failure mode. A caller that the measured pace of the
 * queue cannot serve in time is refused at once rather than left to time out, and callers with
 * far less time left than the rest of their batch go after it rather than cut its time short.
 *
 * A batch the store refuses (a value it cannot hold) is decided again without the item at fault,
 * so that one caller's request never changes another caller's answer.
 */
export class DecisionBatcher<Item, Answer> {
  private queue: Pending<Item, Answer>[] = [];
  /** Unsettled items in the queue. */
  private waiting = 0;
  private inFlight = 0;
  private readonly meter: BacklogMeter;
  private readonly maxInFlight: number;
  private readonly overflowAt: number;
  private readonly maxBatch: number;
  private readonly maxItems: number;
  private readonly marginMs: number;
  /** A pump is scheduled for the next turn of the event loop. */
  private gathering = false;
  /** The pump running is that turn's: what arrived meanwhile has joined the queue. */
  private gathered = false;
  /**
   * The together() call being submitted (0: none): its items are queued, none sent, until all
   * of them are. And the last one's number.
   */
  private group = 0;
  private groups = 0;
  /** Others waiting when the together() call began: its own items are not a backlog to it. */
  private waitingBeforeGroup = 0;
  /**
   * Per together() call with a batch at the store: the shared keys of its items there, with
   * how many of those items hold each. Its next items on those keys wait for them: two batches
   * at once would take the key's lock in whichever order they reach the store.
   */
  private readonly groupKeysInFlight = new Map<number, Map<string, number>>();

  constructor(private readonly options: DecisionBatcherOptions<Item, Answer>) {
    this.maxInFlight = options.maxInFlight ?? 2;
    this.overflowAt = options.overflowAt ?? Infinity;
    this.maxBatch = options.maxBatch ?? 256;
    this.maxItems = options.sharedKeys ? (options.maxItems ?? 4 * this.maxBatch) : this.maxBatch;
    this.marginMs = options.marginMs ?? 0;
    this.meter = new BacklogMeter(options.answerWithinMs, this.marginMs, options.loopBusyMs);
  }

  /** Callers waiting for a batch to take them (not those whose batch is at the store). */
  get queued(): number {
    return this.waiting;
  }

  /**
   * Resolves with the item's answer; rejects with OverloadedError (shed), StoreUnavailableError
   * (the store did not answer in time), or the error of the item's own decision.
   */
  submit(item: Item): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const now = performance.now();
      const refused = this.meter.refuse(
        now,
        this.group === 0 ? this.waiting : this.waitingBeforeGroup,
      );
      if (refused) {
        reject(refused);
        return;
      }
      const pending: Pending<Item, Answer> = {
        item,
        arrival: this.meter.arrive(now),
        deadline: now + this.options.answerWithinMs,
        ahead: this.waiting,
        group: this.group,
        keys: this.options.sharedKeys?.(item) ?? NO_KEYS,
        resolve,
        reject,
        queued: true,
        retried: false,
        settled: false,
        timer: setTimeout(() => {
          // One turn of the event loop first: an answer already received, waiting behind a busy
          // loop, has been committed and must reach the caller instead of the failure.
          setImmediate(() => this.settle(pending, () => reject(this.undecided(pending))));
        }, this.options.answerWithinMs),
      };
      this.queue.push(pending);
      this.waiting += 1;
      this.pump();
    });
  }

  /**
   * Runs `submit`, which submits several items: none is sent before all are queued, so that
   * they go in as few batches as the limits allow, in the order submitted (an idle batcher
   * would otherwise send the first alone, and the rest in a batch that may reach the store
   * first).
   */
  together<T>(submit: () => T): T {
    // Nested: its items are the outer call's.
    if (this.group !== 0) return submit();
    this.group = ++this.groups;
    this.waitingBeforeGroup = this.waiting;
    try {
      return submit();
    } finally {
      this.group = 0;
      this.pump();
    }
  }

  private pump(): void {
    if (this.group !== 0) return;
    while (this.waiting > 0 && this.hasRoom()) {
      // With a batch already at the store, one turn of the event loop first: the calls being
      // read right now join this batch instead of one going alone (a round trip and a commit
      // for one decision) while the rest wait for the next. Idle, or with a full batch
      // (maxBatch) waiting already, as in a burst, it goes at once.
      if (this.inFlight > 0 && !this.gathered && this.waiting < this.maxBatch) {
        if (!this.gathering) {
          this.gathering = true;
          setImmediate(() => {
            this.gathering = false;
            this.gathered = true;
            try {
              this.pump();
            } finally {
              this.gathered = false;
            }
          });
        }
        return;
      }
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.inFlight += 1;
      this.groupKeys(batch, 1);
      void this.decideIsolated(batch).finally(() => {
        this.inFlight -= 1;
        this.groupKeys(batch, -1);
        this.pump();
      });
    }
  }

  /**
   * Whether another batch may go: one of maxInFlight, or one of as many more while `overflowAt`
   * callers wait. A burst read in one go (a thousand calls on a connection) thus has batches at
   * the store while the rest is still being read, instead of all of it waiting for one answer.
   */
  private hasRoom(): boolean {
    if (this.inFlight < this.maxInFlight) return true;
    return this.waiting >= this.overflowAt && this.inFlight < 2 * this.maxInFlight;
  }

  /** Adds (`by` 1) or removes (-1) the shared keys of `batch`'s together() items in flight. */
  private groupKeys(batch: readonly Pending<Item, Answer>[], by: 1 | -1): void {
    for (const p of batch) {
      if (p.group === 0 || p.keys.length === 0) continue;
      let keys = this.groupKeysInFlight.get(p.group);
      if (!keys) this.groupKeysInFlight.set(p.group, (keys = new Map()));
      for (const k of p.keys) {
        const n = (keys.get(k) ?? 0) + by;
        if (n > 0) keys.set(k, n);
        else keys.delete(k);
      }
      if (keys.size === 0) this.groupKeysInFlight.delete(p.group);
    }
  }

  /**
   * The next batch, oldest first: one batch key, each idempotency key at most once (retries
   * wait a turn), at most maxBatch shared keys and maxItems items. One pass over the queue.
   * An item that waits holds back every later item on one of its shared keys, and a together()
   * item waits while its call has a batch on one of its keys at the store: items on one key
   * count in the order they came.
   */
  private takeBatch(): Pending<Item, Answer>[] {
    const now = performance.now();
    const batch: Pending<Item, Answer>[] = [];
    const rest: Pending<Item, Answer>[] = [];
    const idempotencyKeys = new Set<string>();
    const keys = new Set<string>();
    /** Shared keys of the items that wait. */
    const held = new Set<string>();
    let batchKey: string | undefined;
    let aheadSum = 0;
    let waitSum = 0;
    let i = 0;
    for (; i < this.queue.length && batch.length < this.maxItems; i++) {
      const p = this.queue[i]!;
      if (p.settled) continue;
      const bk = this.options.batchKey(p.item);
      batchKey ??= bk;
      const idem = this.options.idempotencyKey(p.item);
      const own = p.keys;
      const fresh = own.filter((k) => !keys.has(k));
      const inFlight = p.group === 0 ? undefined : this.groupKeysInFlight.get(p.group);
      if (
        bk !== batchKey ||
        (idem !== null && idempotencyKeys.has(idem)) ||
        (batch.length > 0 && keys.size + fresh.length > this.maxBatch) ||
        own.some((k) => held.has(k) || inFlight?.has(k) === true)
      ) {
        for (const k of own) held.add(k);
        rest.push(p);
        continue;
      }
      if (idem !== null) idempotencyKeys.add(idem);
      for (const k of fresh) keys.add(k);
      p.queued = false;
      this.waiting -= 1;
      batch.push(p);
      if (!p.retried && p.ahead > 0) {
        aheadSum += p.ahead;
        waitSum += now - p.arrival.at;
      }
    }
    this.queue = i < this.queue.length ? rest.concat(this.queue.slice(i)) : rest;
    this.meter.drained(aheadSum, waitSum);
    return batch;
  }

  /**
   * Decides `batch`; a batch the store refuses is decided again
   * in halves, concurrently, until the items at fault are alone.
   */
  private async decideIsolated(batch: readonly Pending<Item, Answer>[]): Promise<void> {
    const now = performance.now();
    let live: Pending<Item, Answer>[] = [];
    // A caller whose time is (nearly) up could not get an answer that counts in time: it is
    // answered as soon as the others are sent, rather than cutting the whole batch's time short.
    const expired: Pending<Item, Answer>[] = [];
    for (const p of batch) {
      if (!p.settled) (p.deadline - this.marginMs <= now ? expired : live).push(p);
    }
    // Callers with less than half the time of the batch's latest (they waited longer: behind a
    // busy loop, in a queue) would cut everyone's time short too: they go back to the queue,
    // to be sent again on their own once the others are on their way.
    let later: Pending<Item, Answer>[] = [];
    let deadline = earliest(live) - this.marginMs;
    const latest = live.reduce((t, p) => Math.max(t, p.deadline), -Infinity) - this.marginMs;
    if (deadline - now < (latest - now) / 2) {
      const cut = now + (latest - now) / 2;
      later = live.filter((p) => p.deadline - this.marginMs < cut);
      live = live.filter((p) => p.deadline - this.marginMs >= cut);
      deadline = earliest(live) - this.marginMs;
    }
    const items = live.map((p) => p.item);
    const decided = live.length > 0 ? (async () => this.options.decide(items, deadline))() : null;
    this.requeue(later);
    this.rejectSoon(expired);
    if (!decided) return;
    let answers: readonly Answer[];
    try {
      answers = await decided;
    } catch (err) {
      await this.failed(live, err, now);
      return;
    }
    this.meter.answered(now);
    // In a tick, like rejectSoon: the next batch, sent as this one's slot frees, goes first.
    process.nextTick(() =>
      live.forEach((p, i) =>
        this.settle(p, () =>
          i < answers.length
            ? p.resolve(answers[i] as Answer)
            : p.reject(new Error(`decide answered ${answers.length} of ${live.length} items`)),
        ),
      ),
    );
  }

  private async failed(live: Pending<Item, Answer>[], err: unknown, sentAt: number): Promise<void> {
    const now = performance.now();
    if (err instanceof DecisionTooLateError) {
      // Nothing took effect. Callers whose time a second try would outlast are answered now
      // (the earliest always, so that tries end); the others go back to the front of the queue.
      const again: Pending<Item, Answer>[] = [];
      const answerNow: Pending<Item, Answer>[] = [];
      const first = earliest(live);
      for (const p of live) {
        const noTime = p.deadline - this.marginMs <= now + (now - sentAt);
        (p.deadline === first || noTime ? answerNow : again).push(p);
      }
      this.requeue(again);
      this.rejectSoon(answerNow, err);
      return;
    }
    if (err instanceof StoreTimeoutError) {
      // No answer in time: the store's outage, or a batch sent late behind the queue.
      for (const p of live) this.settle(p, () => p.reject(this.undecided(p, err)));
      return;
    }
    if (err instanceof StoreUnavailableError) {
      // The store said it cannot decide (unreachable, read-only, refusing): the failure mode's
      // case, however long the callers queued.
      for (const p of live) this.settle(p, () => p.reject(err));
      return;
    }
    // Not an outage: an error the store answered with, for the whole batch or for one item.
    this.meter.answered(sentAt);
    const isolate = this.options.isolate?.(err) ?? true;
    if (!isolate || live.length === 1) {
      const itemError = isolate ? this.options.itemError : undefined;
      for (const p of live)
        this.settle(p, () => p.reject(itemError ? itemError(err, p.item) : err));
      return;
    }
    const half = Math.ceil(live.length / 2);
    const [first, second] = [live.slice(0, half), live.slice(half)];
    // Halves on a common key one after the other: at once, they would take its lock in either
    // order, and its items would not count in the order they came.
    if (this.shareKeys(first, second)) {
      await this.decideIsolated(first);
      await this.decideIsolated(second);
    } else {
      await Promise.all([this.decideIsolated(first), this.decideIsolated(second)]);
    }
  }

  private shareKeys(a: readonly Pending<Item, Answer>[], b: readonly Pending<Item, Answer>[]) {
    const keys = new Set(a.flatMap((p) => p.keys));
    return b.some((p) => p.keys.some((k) => keys.has(k)));
  }

  private requeue(items: Pending<Item, Answer>[]): void {
    if (items.length === 0) return;
    for (const p of items) {
      p.queued = true;
      p.retried = true;
    }
    this.waiting += items.length;
    this.queue = items.concat(this.queue);
    this.pump();
  }

  /**
   * Answers callers not decided in time in a process.nextTick, after the ticks queued before:
   * sending their answers takes many promise jobs, and a batch sent just now gets its pooled
   * connection in a tick (pg-pool's), which must not wait behind all of those jobs.
   */
  private rejectSoon(pending: readonly Pending<Item, Answer>[], cause?: unknown): void {
    if (pending.length === 0) return;
    process.nextTick(() => {
      for (const p of pending) this.settle(p, () => p.reject(this.undecided(p, cause)));
    });
  }

  /** The error of a caller not decided in time: shed, or the store's unavailability. */
  private undecided(p: Pending<Item, Answer>, cause?: unknown): unknown {
    return this.meter.undecided(p.arrival, this.waiting, cause);
  }

  private settle(p: Pending<Item, Answer>, fn: () => void): void {
    if (p.settled) return;
    p.settled = true;
    // Left in the queue, it is dropped when a batch is next taken.
    if (p.queued) this.waiting -= 1;
    clearTimeout(p.timer);
    fn();
  }
}

const NO_KEYS: readonly string[] = [];

/** The earliest deadline of `pending` (Infinity for none). */
function earliest(pending: readonly { readonly deadline: number }[]): number {
  return pending.reduce((t, p) => Math.min(t, p.deadline), Infinity);
}
