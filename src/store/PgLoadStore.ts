import type { LoadStore, StoredSnapshot } from '../load/ports.js';
import type { HostSnapshot } from '../load/types.js';
import type { Database } from './Database.js';

interface Row {
  host: string;
  at: Date;
  cpu_percent: number;
  memory_percent: number;
  disk_percent: number;
  disk_read_bytes_per_sec: number;
  disk_write_bytes_per_sec: number;
  net_rx_bytes_per_sec: number;
  net_tx_bytes_per_sec: number;
  load_avg_1m: number;
  throttle_factor: number;
  age_ms: number;
}

/**
 * Latest snapshot per host in host_load. quota_write_load records throttle events and NOTIFYs
 * quota_load with the host name (NOTIFY payloads are limited to 8,000 bytes: readers fetch the
 * row). Ages are computed by the database clock so that replicas' clocks need not agree.
 */
export class PgLoadStore implements LoadStore {
  constructor(private readonly db: Database) {}

  async write(
    s: Omit<HostSnapshot, 'at'> & { at: Date | null },
    factor: number,
  ): Promise<{ at: Date; previousFactor: number }> {
    const result = await this.db.query<{ at: Date; previous_factor: number }>(
      'SELECT at, previous_factor FROM quota_write_load($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
      [
        s.host,
        s.at,
        s.cpuPercent,
        s.memoryPercent,
        s.diskPercent,
        s.diskReadBytesPerSec,
        s.diskWriteBytesPerSec,
        s.netRxBytesPerSec,
        s.netTxBytesPerSec,
        s.loadAvg1m,
        factor,
      ],
      { name: 'quota_write_load' },
    );
    const row = result.rows[0]!;
    return { at: row.at, previousFactor: row.previous_factor };
  }

  async latest(maxAgeMs: number, hosts?: readonly string[]): Promise<StoredSnapshot[]> {
    const result = await this.db.query<Row>(
      `SELECT *, extract(epoch FROM clock_timestamp() - updated_at)::float8 * 1000 AS age_ms
         FROM host_load
        WHERE updated_at > clock_timestamp() - make_interval(secs => $1::float8 / 1000)
          AND ($2::text[] IS NULL OR host = ANY ($2))`,
      [maxAgeMs, hosts ?? null],
    );
    return result.rows.map((r) => ({
      host: r.host,
      at: r.at,
      cpuPercent: r.cpu_percent,
      memoryPercent: r.memory_percent,
      diskPercent: r.disk_percent,
      diskReadBytesPerSec: r.disk_read_bytes_per_sec,
      diskWriteBytesPerSec: r.disk_write_bytes_per_sec,
      netRxBytesPerSec: r.net_rx_bytes_per_sec,
      netTxBytesPerSec: r.net_tx_bytes_per_sec,
      loadAvg1m: r.load_avg_1m,
      throttleFactor: r.throttle_factor,
      ageMs: Math.max(0, r.age_ms),
    }));
  }
}
