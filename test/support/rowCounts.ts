import type { TestDatabase } from './testDatabase.js';

/**
 * Tables a server writes on its own schedule whatever the calls: when each cluster-wide task
 * last ran. Not counted: a refused call cannot write them, and a run landing between two counts
 * would read as the call's doing.
 */
const SCHEDULE_BOOKKEEPING = ['task_runs'];

/** Row counts of every table in schema public (but SCHEDULE_BOOKKEEPING), by table name. */
export type RowCounts = Record<string, number>;

/**
 * A function reading the row count of every table of schema public in one statement; tables
 * are listed once, when it is made (from information_schema, so new tables are included).
 * `flush` runs first on every count: what the server buffered from earlier calls (violations,
 * statistics, load history) is written then, so that a count taken after a call shows what
 * that call wrote, buffered or not (see flushBuffers).
 */
export async function rowCounter(
  db: TestDatabase,
  flush: () => Promise<void> = async () => undefined,
): Promise<() => Promise<RowCounts>> {
  const tables = (
    await db.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
          AND table_name <> ALL ($1) ORDER BY table_name`,
      [SCHEDULE_BOOKKEEPING],
    )
  ).rows.map((r) => r.name);
  const quote = (t: string) => `"${t.replaceAll('"', '""')}"`;
  const sql = `SELECT json_build_object(${tables
    .map((t) => `'${t.replaceAll("'", "''")}', (SELECT count(*) FROM ${quote(t)})`)
    .join(', ')}) AS counts`;
  return async () => {
    await flush();
    return (await db.query<{ counts: RowCounts }>(sql)).rows[0]!.counts;
  };
}

/** Waits until the counts stay the same for `quietMs` (background writers done); returns them. */
export async function settledCounts(
  count: () => Promise<RowCounts>,
  quietMs = 2500,
  timeoutMs = 20_000,
): Promise<RowCounts> {
  const started = Date.now();
  let last = await count();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() - started > timeoutMs) throw new Error('row counts never settled');
    await new Promise((r) => setTimeout(r, 250));
    const now = await count();
    if (JSON.stringify(now) !== JSON.stringify(last)) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}
