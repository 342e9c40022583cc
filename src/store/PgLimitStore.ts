import type { LimitStore } from '../limits/ports.js';
import type { CounterDecision, CounterRequest } from '../limits/types.js';
import type { Database } from './Database.js';

const CHECK = `SELECT quota_check_limits($1::text[], $2::text[], $3::bigint[], $4::bigint[],
  $5::text[], $6::text[], $7::boolean[], $8::bigint, $9::text, $10::text) AS d`;

/** The jsonb that quota_check_limits returns. */
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

/** Decisions by the stored function quota_check_limits: one round trip, one transaction. */
export class PgLimitStore implements LimitStore {
  constructor(private readonly db: Database) {}

  async check(
    counters: readonly CounterRequest[],
    hits: number,
    idempotencyKey: string | null,
    timezone: string,
  ): Promise<CounterDecision> {
    const result = await this.db.query<{ d: DecisionJson }>(
      CHECK,
      [
        counters.map((c) => c.rule),
        counters.map((c) => c.key),
        counters.map((c) => c.limit),
        counters.map((c) => c.windowMs),
        counters.map((c) => c.algorithm),
        counters.map((c) => c.period),
        counters.map((c) => c.shadow),
        hits,
        idempotencyKey,
        timezone,
      ],
      { name: 'quota_check_limits', fast: true },
    );
    const d = result.rows[0]!.d;
    return {
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
    };
  }
}
