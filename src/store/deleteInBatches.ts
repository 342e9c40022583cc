import type { Database } from './Database.js';

/** A DELETE whose $1 is the batch size and whose further parameters ($2 …) are `values`. */
export interface BatchDelete {
  readonly text: string;
  readonly values: readonly unknown[];
}

/**
 * Runs each DELETE (of at most $1 rows, skipping rows others hold) again and again, each its own
 * short statement, until every one finds less than a full batch or `maxBatches` rounds have run.
 * Resolves with the rows each deleted, by the statements' names.
 */
export async function deleteInBatches<K extends string>(
  db: Database,
  statements: Readonly<Record<K, string | BatchDelete>>,
  batch = 10_000,
  maxBatches = 20,
): Promise<Record<K, number>> {
  const names = Object.keys(statements) as K[];
  const total = Object.fromEntries(names.map((k) => [k, 0])) as Record<K, number>;
  const pending = new Set(names);
  for (let i = 0; i < maxBatches && pending.size > 0; i++) {
    for (const name of pending) {
      const s = statements[name];
      const [text, values] = typeof s === 'string' ? [s, []] : [s.text, s.values];
      const deleted = (await db.query(text, [batch, ...values])).rowCount ?? 0;
      total[name] += deleted;
      // A statement that found less than a full batch is done: nothing more is past its bound.
      if (deleted < batch) pending.delete(name);
    }
  }
  return total;
}
