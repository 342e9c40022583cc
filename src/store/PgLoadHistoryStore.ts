import type { LoadHistoryStore } from '../load/ports.js';
import type { HistoryRow, HourlySummary, TrendRow } from '../load/types.js';
import type { Database } from './Database.js';

/** The four metrics trends are reported for, as (name, value column, max column). */
const METRICS = `(VALUES ('cpu_percent', h.cpu_percent, h.cpu_max),
                         ('memory_percent', h.memory_percent, h.memory_max),
                         ('disk_percent', h.disk_percent, h.disk_max),
                         ('load_avg_1m', h.load_avg_1m, h.load_avg_1m_max)) m(metric, v, vmax)`;

/** The smallest positive normal float8: below it a figure counts as 0 in a mean. */
const MIN_NORMAL = `'2.2250738585072014e-308'::float8`;

/** `x`, or 0 where it is subnormal. */
const normal = (x: string) => `(CASE WHEN abs(${x}) < ${MIN_NORMAL} THEN 0::float8 ELSE ${x} END)`;

/**
 * The mean of float8 `v` weighted by the integer `samples`, over the rows `filter` keeps (every
 * row without one); null when they hold no samples. PostgreSQL raises "value out of range:
 * underflow" wherever a float8 product or quotient of non-zero operands rounds to zero, so one
 * subnormal row (5e-324, stored before reports were checked, or a merged mean) would fail the
 * query for every caller: subnormal values and sums count as 0, and a normal sum divided by a
 * sample count stays non-zero.
 */
export function weightedMean(v: string, samples: string, filter?: string): string {
  const where = filter === undefined ? '' : ` FILTER (WHERE ${filter})`;
  const total = normal(`sum(${normal(v)} * ${samples})${where}`);
  return `(${total} / nullif(sum(${samples})${where}, 0))::float8`;
}

/** load_history: rows carry a sample count, so every mean here is weighted by it. */
export class PgLoadHistoryStore implements LoadHistoryStore {
  constructor(private readonly db: Database) {}

  /** One statement per batch, whatever its size. */
  async append(rows: readonly HistoryRow[]): Promise<void> {
    if (rows.length === 0) return;
    const col = <K extends keyof HistoryRow>(k: K) => rows.map((r) => r[k]);
    await this.db.query(
      `INSERT INTO load_history (host, at, samples, cpu_percent, cpu_max, memory_percent,
         memory_max, disk_percent, disk_max, load_avg_1m, load_avg_1m_max, throttle_factor)
       SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::float8[], $5::float8[],
         $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[],
         $12::float8[])`,
      [
        col('host'),
        col('at'),
        col('samples'),
        col('cpuPercent'),
        col('cpuMax'),
        col('memoryPercent'),
        col('memoryMax'),
        col('diskPercent'),
        col('diskMax'),
        col('loadAvg1m'),
        col('loadAvg1mMax'),
        col('throttleFactor'),
      ],
    );
  }

  async trend(minutes: number, hosts: readonly string[] | undefined): Promise<TrendRow[]> {
    // The span's halves split the time between a host's first and last sample in the window.
    const result = await this.db.report<{
      host: string;
      metric: string;
      average: number;
      max: number;
      samples: string;
      first_half: number | null;
      second_half: number | null;
    }>(
      `WITH h AS (
         SELECT * FROM load_history
          WHERE at >= clock_timestamp() - make_interval(mins => $1)
            AND ($2::text[] IS NULL OR host = ANY ($2))),
       b AS (SELECT host, min(at) + (max(at) - min(at)) / 2 AS mid FROM h GROUP BY host)
       SELECT h.host, m.metric,
              ${weightedMean('m.v', 'h.samples')} AS average,
              max(m.vmax)::float8 AS max,
              sum(h.samples) AS samples,
              ${weightedMean('m.v', 'h.samples', 'h.at < b.mid')} AS first_half,
              ${weightedMean('m.v', 'h.samples', 'h.at >= b.mid')} AS second_half
         FROM h JOIN b USING (host) CROSS JOIN LATERAL ${METRICS}
        GROUP BY h.host, m.metric
        ORDER BY h.host, m.metric`,
      [minutes, hosts ?? null],
    );
    return result.rows.map((r) => ({
      host: r.host,
      metric: r.metric,
      average: r.average,
      max: r.max,
      samples: Number(r.samples),
      firstHalf: r.first_half,
      secondHalf: r.second_half,
    }));
  }

  async hourly(hours: number, hosts: readonly string[] | undefined): Promise<HourlySummary[]> {
    const result = await this.db.report<{
      host: string;
      hour: Date;
      samples: string;
      cpu_avg: number;
      cpu_max: number;
      memory_avg: number;
      memory_max: number;
      disk_avg: number;
      disk_max: number;
      load_avg: number;
      load_max: number;
    }>(
      `SELECT host, date_trunc('hour', at) AS hour, sum(samples) AS samples,
              ${weightedMean('cpu_percent', 'samples')} AS cpu_avg,
              max(cpu_max)::float8 AS cpu_max,
              ${weightedMean('memory_percent', 'samples')} AS memory_avg,
              max(memory_max)::float8 AS memory_max,
              ${weightedMean('disk_percent', 'samples')} AS disk_avg,
              max(disk_max)::float8 AS disk_max,
              ${weightedMean('load_avg_1m', 'samples')} AS load_avg,
              max(load_avg_1m_max)::float8 AS load_max
         FROM load_history
        WHERE at >= date_trunc('hour', clock_timestamp()) - make_interval(hours => $1 - 1)
          AND ($2::text[] IS NULL OR host = ANY ($2))
        GROUP BY host, date_trunc('hour', at)
        ORDER BY hour DESC, host`,
      [hours, hosts ?? null],
    );
    return result.rows.map((r) => ({
      host: r.host,
      hour: r.hour,
      samples: Number(r.samples),
      cpuAvg: r.cpu_avg,
      cpuMax: r.cpu_max,
      memoryAvg: r.memory_avg,
      memoryMax: r.memory_max,
      diskAvg: r.disk_avg,
      diskMax: r.disk_max,
      loadAvg1mAvg: r.load_avg,
      loadAvg1mMax: r.load_max,
    }));
  }
}
