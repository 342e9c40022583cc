import type { LimitStore } from '../limits/ports.js';
import type { CounterDecision, CounterRequest } from '../limits/types.js';
import type { Database } from './Database.js';
import {
  budgetAtSend,
  callBatchFunction,
  compare,
  itemError,
  mayBeAnItems,
} from './batchStatement.js';
import { DecisionBatcher } from './DecisionBatcher.js';

// p_now NULL: the decision's time is the database clock, the one every replica shares.
const DECIDE = `SELECT quota_decide($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[],
  $6::text[], $7::text[], $8::boolean[], $9::int[], $10::int[], $11::bigint[], $12::text[], $13::text,
  $14::int, p_now => NULL) AS result`;

/** The jsonb that quota_decide returns for one decision. */
export interface DecisionJson {
  allowed: boolean;
  retry_after_ms: number;
  /** Set on an answer replayed for a repeated idempotency key. */
  replayed?: boolean;
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

/** One check waiting for its batch. */
interface LimitCheck {
  readonly counters: readonly CounterRequest[];
  readonly hits: number;
  readonly idempotencyKey: string | null;
  readonly timezone: string;
}

export interface PgLimitStoreOptions {
  /** Told the size of each batch sent (metrics). */
  readonly onBatch?: (items: number) => void;
  /** Time within which a caller has its answer, queueing and the failure mode included, in ms. */
  readonly timeoutMs: number;
  /** Batches in flight at once. @default 2 */
  readonly maxInFlight?: number;
  /** Distinct counters per batch at most. @default 256 */
  readonly maxBatch?: number;
  /**
   * Decisions per batch at most: a decision on counters already in the batch costs the statement
   * no lock and no write of its own (about 50 µs of the database's time). @default 1024
   */
  readonly maxItems?: number;
  /**
   * Kept back from a batch's deadline for its answer to reach the caller after the commit, in
   * ms. @default a tenth of timeoutMs, at least 1 ms
   */
  readonly deadlineMarginMs?: number;
}

/**
 * Decisions by the stored function quota_decide, batched by a {@link DecisionBatcher}: one round
 * trip, one lock per counter and one commit for many decisions, which is what lets a hot key go
 * past one commit per decision; a burst on one key goes in batches of up to maxItems decisions
 * under its one lock. Each batch carries the time left to its earliest caller, and the function
 * counts nothing once that has passed: a caller answered with the failure mode was not counted.
 * A batch PostgreSQL refuses for a value (a NUL byte in a key) is decided again without the
 * decision that holds it, which alone gets RejectedInputError.
 */
export class PgLimitStore implements LimitStore {
  private readonly batcher: DecisionBatcher<LimitCheck, CounterDecision>;
  /** Replay lookups of blocked callers: a flood of them is a few reads, not one per call. */
  private readonly replays: DecisionBatcher<string, CounterDecision | null>;

  constructor(
    private readonly db: Database,
    options: PgLimitStoreOptions,
  ) {
    this.batcher = new DecisionBatcher({
      // The caller is to have its answer within the timeout, the failure mode included: the
      // store gives up a tenth of it early, which leaves the answer time to be sent.
      answerWithinMs: Math.round(options.timeoutMs * 0.9),
      // After the database's last check of its deadline come the writes, the commit, the trip
      // back and a busy event loop (tens of ms on a loaded box); a tenth of the timeout keeps
      // the budget in proportion to what the operator allowed for the answer.
      marginMs: options.deadlineMarginMs ?? Math.max(1, Math.round(options.timeoutMs * 0.1)),
      maxInFlight: options.maxInFlight,
      // A full batch of distinct counters waiting: worth a statement of its own now.
      overflowAt: options.maxBatch ?? 256,
      maxBatch: options.maxBatch ?? 256,
      maxItems: options.maxItems ?? 1024,
      batchKey: (c) => c.timezone,
      idempotencyKey: (c) => c.idempotencyKey,
      sharedKeys: (c) => c.counters.map(counterId),
      decide: (batch, deadline) => {
        options.onBatch?.(batch.length);
        return this.decide(batch, deadline);
      },
      isolate: mayBeAnItems,
      itemError,
    });
    this.replays = new DecisionBatcher({
      answerWithinMs: Math.round(options.timeoutMs * 0.9),
      maxInFlight: 1,
      maxBatch: 1024,
      batchKey: () => '',
      idempotencyKey: () => null,
      decide: (keys) => this.replayBatch(keys),
      // A read of keys built from validated request ids: nothing for one item to spoil.
      isolate: () => false,
    });
  }

  /** Decisions waiting for a batch to take them. */
  get queued(): number {
    return this.batcher.queued;
  }

  check(
    counters: readonly CounterRequest[],
    hits: number,
    idempotencyKey: string | null,
    timezone: string,
  ): Promise<CounterDecision> {
    return this.batcher.submit({ counters, hits, idempotencyKey, timezone });
  }

  together<T>(submit: () => T): T {
    return this.batcher.together(submit);
  }

  private async decide(batch: readonly LimitCheck[], deadline: number): Promise<CounterDecision[]> {
    // Distinct counters in one order on every replica: locks are always taken in that order.
    const index = new Map<string, number>();
    const distinct: { rule: string; key: string }[] = [];
    for (const p of batch) {
      for (const c of p.counters) {
        const id = counterId(c);
        if (!index.has(id)) {
          index.set(id, -1);
          distinct.push({ rule: c.rule, key: c.key });
        }
      }
    }
    distinct.sort((a, b) => compare(a.rule, b.rule) || compare(a.key, b.key));
    distinct.forEach((c, i) => index.set(counterId(c), i + 1));

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
        item.counter.push(index.get(counterId(c))!);
        item.limit.push(c.limit);
        item.windowMs.push(c.windowMs);
        algorithm.push(c.algorithm);
        period.push(c.period);
        shadow.push(c.shadow);
      }
    }
    const decisions = await callBatchFunction<DecisionJson[]>(
      this.db,
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
        budgetAtSend(deadline),
      ],
      { name: 'quota_decide', fast: true },
      deadline,
    );
    return decisions.map(fromJson);
  }

  /**
   * What quota_decide would replay for this key now; read without a lock, batched with the
   * other lookups waiting (one statement for many).
   */
  replay(idempotencyKey: string): Promise<CounterDecision | null> {
    return this.replays.submit(idempotencyKey);
  }

  private async replayBatch(keys: readonly string[]): Promise<(CounterDecision | null)[]> {
    const result = await this.db.query<{ key: string; response: DecisionJson }>(
      `SELECT key, response FROM idempotency_keys
        WHERE key = ANY ($1::text[]) AND expires_at > clock_timestamp()`,
      [keys],
      { fast: true },
    );
    const stored = new Map(result.rows.map((r) => [r.key, r.response]));
    return keys.map((k) => {
      const response = stored.get(k);
      return response ? fromJson({ ...response, replayed: true }) : null;
    });
  }
}

function fromJson(d: DecisionJson): CounterDecision {
  return {
    allowed: d.allowed,
    replayed: d.replayed === true,
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
  };
}

/** A counter's identity: rule names are stored in PostgreSQL, so none holds the NUL between. */
function counterId(c: { rule: string; key: string }): string {
  return `${c.rule}\u0000${c.key}`;
}
