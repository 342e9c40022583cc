import type { ThrottleStore } from '../load/ports.js';
import type { Thresholds, ThrottleEvent } from '../load/types.js';
import type { Database } from './Database.js';

/** throttle_thresholds (a trigger NOTIFYs quota_config on change) and throttle_events. */
export class PgThrottleStore implements ThrottleStore {
  constructor(private readonly db: Database) {}

  async getThresholds(): Promise<Thresholds | null> {
    const result = await this.db.query<Thresholds>(
      'SELECT slight, moderate, heavy, critical FROM throttle_thresholds',
    );
    const row = result.rows[0];
    return row
      ? { slight: row.slight, moderate: row.moderate, heavy: row.heavy, critical: row.critical }
      : null;
  }

  async setThresholds(t: Thresholds): Promise<void> {
    await this.db.query(
      `INSERT INTO throttle_thresholds (id, slight, moderate, heavy, critical)
       VALUES (true, $1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET slight = EXCLUDED.slight, moderate = EXCLUDED.moderate,
         heavy = EXCLUDED.heavy, critical = EXCLUDED.critical, updated_at = now()`,
      [t.slight, t.moderate, t.heavy, t.critical],
    );
  }

  async listEvents(host: string | undefined, limit: number): Promise<ThrottleEvent[]> {
    const result = await this.db.query<{
      host: string;
      at: Date;
      previous_factor: number;
      factor: number;
      cpu_percent: number;
      memory_percent: number;
    }>(
      `SELECT host, at, previous_factor, factor, cpu_percent, memory_percent
         FROM throttle_events WHERE $1::text IS NULL OR host = $1
        ORDER BY at DESC, id DESC LIMIT $2`,
      [host ?? null, limit],
    );
    return result.rows.map((r) => ({
      host: r.host,
      at: r.at,
      previousFactor: r.previous_factor,
      factor: r.factor,
      cpuPercent: r.cpu_percent,
      memoryPercent: r.memory_percent,
    }));
  }
}
