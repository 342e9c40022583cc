import type { LoadRollupStore } from '../jobs/ports.js';
import type { Database } from './Database.js';
import { weightedMean } from './PgLoadHistoryStore.js';

/** The start of the UTC hour of a timestamptz expression (whatever the session's time zone). */
const utcHour = (t: string) => `(date_trunc('hour', ${t} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;

/**
 * load_history → load_hourly, one statement per UTC hour. Each hour is recomputed whole from
 * its raw rows and upserted, so a run repeated, or overlapping another, writes the same rows.
 */
export class PgLoadRollupStore implements LoadRollupStore {
  constructor(
    private readonly db: Database,
    /**
     * Hours recomputed at every run, the current one included: raw rows of a past hour still
     * arrive for a while (buffered on replicas, reported late by executors).
     */
    private readonly recentHours = 3,
  ) {}

  async rollUp(): Promise<{ hours: number; rows: number }> {
    // From the newest hour rolled up (after a pause: every hour since, that raw history still
    // holds), or from the oldest raw row on a first run, up to the current hour.
    const hours = await this.db.query<{ hour: Date }>(
      `WITH b AS (
         SELECT ${utcHour('clock_timestamp()')} AS now_hour,
                (SELECT max(hour) FROM load_hourly) AS newest,
                (SELECT ${utcHour('min(at)')} FROM load_history) AS oldest)
       SELECT generate_series(
                greatest(least(coalesce(newest, oldest),
                               now_hour - make_interval(hours => $1 - 1)), oldest),
                now_hour, interval '1 hour') AS hour
         FROM b WHERE oldest IS NOT NULL`,
      [this.recentHours],
    );
    let rows = 0;
    for (const { hour } of hours.rows) {
      const written = await this.db.query(
        `INSERT INTO load_hourly (host, hour, samples, cpu_avg, cpu_max, memory_avg, memory_max,
                                  disk_avg, disk_max, load_avg_1m_avg, load_avg_1m_max)
         SELECT host, $1::timestamptz, sum(samples),
                ${weightedMean('cpu_percent', 'samples')}, max(cpu_max),
                ${weightedMean('memory_percent', 'samples')}, max(memory_max),
                ${weightedMean('disk_percent', 'samples')}, max(disk_max),
                ${weightedMean('load_avg_1m', 'samples')}, max(load_avg_1m_max)
           FROM load_history
          WHERE at >= $1::timestamptz AND at < $1::timestamptz + interval '1 hour'
          GROUP BY host
         ON CONFLICT (host, hour) DO UPDATE SET
           samples = EXCLUDED.samples,
           cpu_avg = EXCLUDED.cpu_avg, cpu_max = EXCLUDED.cpu_max,
           memory_avg = EXCLUDED.memory_avg, memory_max = EXCLUDED.memory_max,
           disk_avg = EXCLUDED.disk_avg, disk_max = EXCLUDED.disk_max,
           load_avg_1m_avg = EXCLUDED.load_avg_1m_avg, load_avg_1m_max = EXCLUDED.load_avg_1m_max`,
        [hour],
      );
      rows += written.rowCount ?? 0;
    }
    return { hours: hours.rows.length, rows };
  }
}
