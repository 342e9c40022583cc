import type { TaskRunLog } from '../jobs/ports.js';
import type { Database } from './Database.js';

/** task_runs: the last completed run of each cluster-wide task, by the database clock. */
export class PgTaskRunLog implements TaskRunLog {
  constructor(
    private readonly db: Database,
    /** Host name of this replica, recorded with its runs. */
    private readonly replica: string,
  ) {}

  async sinceLastRun(name: string): Promise<number | null> {
    const r = await this.db.query<{ ms: number }>(
      `SELECT (extract(epoch FROM clock_timestamp() - last_run_at) * 1000)::float8 AS ms
         FROM task_runs WHERE name = $1`,
      [name],
    );
    return r.rows[0]?.ms ?? null;
  }

  async recordRun(name: string): Promise<void> {
    await this.db.query(
      `INSERT INTO task_runs (name, last_run_at, replica) VALUES ($1, clock_timestamp(), $2)
       ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at,
                                        replica = EXCLUDED.replica`,
      [name, this.replica],
    );
  }
}
