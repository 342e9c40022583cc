import { StoreUnavailableError } from '../errors.js';
import type { LimitStore } from '../limits/ports.js';
import type { CounterDecision, CounterRequest } from '../limits/types.js';
import type { Database } from './Database.js';

const DECIDE = `SELECT quota_decide($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[],
  $6::text[], $7::text[], $8::boolean[], $9::int[], $10::int[], $11::bigint[], $12::text[], $13::text,
  $14::int) AS d`;

/** The jsonb that quota_decide returns for one decision. */
interface DecisionJson {
  allowed: boolean;
  retry_after_ms: number;
  limits: {
    rule: string;
    key: string;
    shadow: boolean;
    limit: number;
    remaining: number;
    window_ms: number;
    reset_after_ms: number;
    exceeded: boolean;
  }[];
}

interface Pending {
  readonly counters: readonly CounterRequest[];
  readonly hits: number;
  readonly idempotencyKey: string | null;
  readonly timezone: string;
  readonly resolve: (d: CounterDecision) => void;
  readonly reject: (err: unknown) => void;
  settled: boolean;
  timer: NodeJS.Timeout;
}

export interface PgLimitStoreOptions {
  /** Time within which a caller has its answer, queueing and the failure mode included, in ms. */
  readonly timeoutMs: number;
  /** Batches in flight at once. @default 2 */
  readonly maxInFlight?: number;
  /** Decisions per batch at most. @default 256 */
  readonly maxBatch?: number;
}

/**
 * Decisions by the stored function quota_decide. Calls that arrive while batches are in flight
 * wait and go together in the next one: one round trip, one lock per counter and one commit for
 * many decisions, which is what lets a hot key go past one commit per decision. An idle store
 * sends a decision at once, so batching adds no latency when there is nothing to batch.
 */
export class PgLimitStore implements LimitStore {
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxBatch: number;
  private readonly answerWithinMs: number;

  constructor(
    private readonly db: Database,
    private readonly options: PgLimitStoreOptions,
  ) {
    this.maxInFlight = options.maxInFlight ?? 2;
    // The caller is to have its answer within the timeout, the failure mode included: the store
    // gives up a tenth of it early, which leaves the answer time to be sent (measured: 10-20 ms
    // from a frozen database to the caller past the bound, more on a loaded box).
    this.answerWithinMs = Math.round(options.timeoutMs * 0.9);
    this.maxBatch = options.maxBatch ?? 256;
  }

  check(
    counters: readonly CounterRequest[],
    hits: number,
    idempotencyKey: string | null,
    timezone: string,
  ): Promise<CounterDecision> {
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        counters,
        hits,
        idempotencyKey,
        timezone,
        resolve,
        reject,
        settled: false,
        // Queueing counts against the bound too: a caller never waits past it.
        timer: setTimeout(() => {
          settle(pending, () =>
            reject(new StoreUnavailableError(`no decision within ${this.answerWithinMs} ms`)),
          );
          const i = this.queue.indexOf(pending);
          if (i >= 0) this.queue.splice(i, 1);
        }, this.answerWithinMs),
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

  /** The next batch: one time zone, each idempotency key at most once (retries wait a turn). */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    const timezone = this.queue[0]!.timezone;
    for (let i = 0; i < this.queue.length && batch.length < this.maxBatch;) {
      const p = this.queue[i]!;
      if (p.timezone !== timezone || (p.idempotencyKey !== null && keys.has(p.idempotencyKey))) {
        i += 1;
        continue;
      }
      if (p.idempotencyKey !== null) keys.add(p.idempotencyKey);
      batch.push(p);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private async run(batch: Pending[]): Promise<void> {
    const live = batch.filter((p) => !p.settled);
    if (live.length === 0) return;
    try {
      const answers = await this.decide(live);
      live.forEach((p, i) => settle(p, () => p.resolve(answers[i]!)));
    } catch (err) {
      for (const p of live) settle(p, () => p.reject(err));
    }
  }

  private async decide(batch: readonly Pending[]): Promise<CounterDecision[]> {
    // Distinct counters in one order on every replica: locks are always taken in that order.
    const index = new Map<string, number>();
    const distinct: { rule: string; key: string }[] = [];
    for (const p of batch) {
      for (const c of p.counters) {
        const id = `${c.rule}\u0000${c.key}`;
        if (!index.has(id)) {
          index.set(id, -1);
          distinct.push({ rule: c.rule, key: c.key });
        }
      }
    }
    distinct.sort((a, b) => compare(a.rule, b.rule) || compare(a.key, b.key));
    distinct.forEach((c, i) => index.set(`${c.rule}\u0000${c.key}`, i + 1));

    const item = {
      counter: [] as number[],
      limit: [] as number[],
      windowMs: [] as (number | null)[],
    };
    const algorithm: string[] = [];
    const period: (string | null)[] = [];
    const shadow: boolean[] = [];
    const first: number[] = [];
    const count: number[] = [];
    for (const p of batch) {
      first.push(item.counter.length + 1);
      count.push(p.counters.length);
      for (const c of p.counters) {
        item.counter.push(index.get(`${c.rule}\u0000${c.key}`)!);
        item.limit.push(c.limit);
        item.windowMs.push(c.windowMs);
        algorithm.push(c.algorithm);
        period.push(c.period);
        shadow.push(c.shadow);
      }
    }
    const result = await this.db.query<{ d: DecisionJson[] }>(
      DECIDE,
      [
        distinct.map((c) => c.rule),
        distinct.map((c) => c.key),
        item.counter,
        item.limit,
        item.windowMs,
        algorithm,
        period,
        shadow,
        first,
        count,
        batch.map((p) => p.hits),
        batch.map((p) => p.idempotencyKey),
        batch[0]!.timezone,
        this.options.timeoutMs,
      ],
      { name: 'quota_decide', fast: true },
    );
    return result.rows[0]!.d.map((d) => ({
      allowed: d.allowed,
      retryAfterMs: Number(d.retry_after_ms),
      limits: d.limits.map((l) => ({
        rule: l.rule,
        key: l.key,
        shadow: l.shadow,
        limit: Number(l.limit),
        remaining: Number(l.remaining),
        windowMs: Number(l.window_ms),
        resetAfterMs: Number(l.reset_after_ms),
        exceeded: l.exceeded,
      })),
    }));
  }
}

function settle(p: Pending, fn: () => void): void {
  if (p.settled) return;
  p.settled = true;
  clearTimeout(p.timer);
  fn();
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
