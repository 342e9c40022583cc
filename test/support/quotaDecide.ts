import type pg from 'pg';
import type { Algorithm, Period } from '../../src/limits/types.js';
import type { DecisionJson } from '../../src/store/PgLimitStore.js';

/** One limit of a decision, as quota_decide takes it. Durations in ms. */
export interface DecideLimit {
  readonly rule: string;
  readonly key: string;
  readonly limit: number;
  /** @default 60000 unless `period` is set */
  readonly windowMs?: number | null;
  /** @default 'fixed_window' */
  readonly algorithm?: Algorithm;
  readonly period?: Period | null;
  readonly shadow?: boolean;
}

/** One decision of a batch. */
export interface DecideCall {
  readonly limits: readonly DecideLimit[];
  /** @default 1 */
  readonly hits?: number;
  readonly idem?: string | null;
}

/** What quota_decide answers for one decision. */
export type DecideAnswer = DecisionJson;

export interface DecideOptions {
  /** @default 'UTC' */
  readonly tz?: string;
  /** @default 10000 */
  readonly budgetMs?: number | null;
}

/** A pg client or pool, or a TestDatabase. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

const SQL = `SELECT quota_decide($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[],
  $6::text[], $7::text[], $8::boolean[], $9::int[], $10::int[], $11::bigint[], $12::text[], $13::text,
  $14::int, $15::timestamptz) AS d`;

/**
 * Calls quota_decide for `calls` as one batch at time `now` (null: the database clock), laid out
 * as the store lays it out: distinct counters in (rule, key) order, items pointing into them.
 */
export async function quotaDecide(
  db: Queryable,
  calls: readonly DecideCall[],
  now: Date | null,
  options: DecideOptions = {},
): Promise<DecideAnswer[]> {
  const ids = [
    ...new Set(calls.flatMap((c) => c.limits.map((l) => JSON.stringify([l.rule, l.key])))),
  ].sort();
  const counters = ids.map((id) => JSON.parse(id) as [string, string]);
  const items = calls.flatMap((c) => c.limits);
  const first: number[] = [];
  let n = 1;
  for (const c of calls) {
    first.push(n);
    n += c.limits.length;
  }
  const result = await db.query<{ d: DecideAnswer[] }>(SQL, [
    counters.map(([rule]) => rule),
    counters.map(([, key]) => key),
    items.map((l) => ids.indexOf(JSON.stringify([l.rule, l.key])) + 1),
    items.map((l) => l.limit),
    items.map((l) => (l.period ? null : (l.windowMs ?? 60_000))),
    items.map((l) => l.algorithm ?? 'fixed_window'),
    items.map((l) => l.period ?? null),
    items.map((l) => l.shadow ?? false),
    first,
    calls.map((c) => c.limits.length),
    calls.map((c) => c.hits ?? 1),
    calls.map((c) => c.idem ?? null),
    options.tz ?? 'UTC',
    options.budgetMs === undefined ? 10_000 : options.budgetMs,
    now,
  ]);
  return result.rows[0]!.d;
}
