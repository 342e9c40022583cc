import type { Database } from './Database.js';

/**
 * Runs each DELETE (of at most $1 rows, skipping rows others hold) again and again, each its own
 * short statement, until every one finds less than a full batch or `maxBatches` rounds have run.
 * Resolves with the rows each deleted, by the statements' names.
 */
export async function deleteInBatches<K extends string>(
  db: Database,
  statements: Readonly<Record<K, string>>,
  batch = 10_000,
  maxBatches = 20,
): Promise<Record<K, number>> {
  const names = Object.keys(statements) as K[];
  const total = Object.fromEntries(names.map((k) => [k, 0])) as Record<K, number>;
  for (let i = 0; i < maxBatches; i++) {
    let full = false;
    for (const name of names) {
      const deleted = (await db.query(statements[name], [batch])).rowCount ?? 0;
      total[name] += deleted;
      full ||= deleted >= batch;
    }
    if (!full) break;
  }
  return total;
}
