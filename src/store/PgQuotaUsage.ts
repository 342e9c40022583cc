import type { QuotaUsageOverview, QuotaUsageReader } from '../quotas/ports.js';
import type { Database } from './Database.js';

/**
 * command_usage summed per command type for the current day, week and month (database clock).
 * A row counts in a period only when its stored period is the current one: an older one is over.
 */
export class PgQuotaUsage implements QuotaUsageReader {
  constructor(private readonly db: Database) {}

  async overview(timezone: string, topUsers: number): Promise<QuotaUsageOverview> {
    const result = await this.db.report<{
      command_type: string | null;
      user_id: string | null;
      today: string;
      week: string;
      month: string;
      users_today: string;
      at: Date;
    }>(
      `WITH b AS (SELECT * FROM command_quota_bounds($1, clock_timestamp())),
       cur AS (
         SELECT u.user_id, u.command_type,
                CASE WHEN u.day_start = b.day_start THEN u.day_used ELSE 0 END AS today,
                CASE WHEN u.week_start = b.week_start THEN u.week_used ELSE 0 END AS week,
                CASE WHEN u.month_start = b.month_start THEN u.month_used ELSE 0 END AS month
           FROM command_usage u, b
          WHERE u.week_start = b.week_start OR u.month_start = b.month_start)
       (SELECT command_type, NULL::text AS user_id, sum(today)::text AS today,
               sum(week)::text AS week, sum(month)::text AS month,
               count(*) FILTER (WHERE today > 0)::text AS users_today, clock_timestamp() AS at
          FROM cur GROUP BY command_type ORDER BY command_type)
       UNION ALL
       (SELECT command_type, user_id, today::text, '0', '0', '0', clock_timestamp()
          FROM cur WHERE today > 0 ORDER BY today DESC, user_id, command_type LIMIT $2)`,
      [timezone, topUsers],
    );
    const at = result.rows[0]?.at ?? (await this.now());
    return {
      at,
      byCommandType: result.rows
        .filter((r) => r.user_id === null)
        .map((r) => ({
          commandType: r.command_type ?? '',
          usedToday: Number(r.today),
          usedThisWeek: Number(r.week),
          usedThisMonth: Number(r.month),
          usersToday: Number(r.users_today),
        })),
      topUsers: result.rows
        .filter((r) => r.user_id !== null)
        .map((r) => ({
          userId: r.user_id!,
          commandType: r.command_type ?? '',
          usedToday: Number(r.today),
        })),
    };
  }

  private async now(): Promise<Date> {
    const r = await this.db.report<{ at: Date }>('SELECT clock_timestamp() AS at');
    return r.rows[0]!.at;
  }
}
