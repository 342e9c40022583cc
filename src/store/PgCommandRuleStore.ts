import { NotFoundError } from '../errors.js';
import type { CommandRuleStore } from '../quotas/ports.js';
import type { CommandQuotaRule } from '../quotas/types.js';
import type { Database } from './Database.js';

interface RuleRow {
  user_id: string;
  command_type: string;
  daily_limit: string | null;
  weekly_limit: string | null;
  monthly_limit: string | null;
  cpu_estimate_percent: number;
  memory_estimate_bytes: string;
}

const COLUMNS =
  'user_id, command_type, daily_limit, weekly_limit, monthly_limit, cpu_estimate_percent, memory_estimate_bytes';

/** Rules in command_quota_rules; a trigger NOTIFYs quota_config on every change. */
export class PgCommandRuleStore implements CommandRuleStore {
  constructor(private readonly db: Database) {}

  async list(): Promise<CommandQuotaRule[]> {
    const result = await this.db.query<RuleRow>(
      `SELECT ${COLUMNS} FROM command_quota_rules
        ORDER BY command_type COLLATE "C", user_id <> '*', user_id COLLATE "C"`,
    );
    return result.rows.map(toRule);
  }

  async upsert(rule: CommandQuotaRule): Promise<CommandQuotaRule> {
    const result = await this.db.query<RuleRow>(
      `INSERT INTO command_quota_rules (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (user_id, command_type) DO UPDATE SET
         daily_limit = EXCLUDED.daily_limit, weekly_limit = EXCLUDED.weekly_limit,
         monthly_limit = EXCLUDED.monthly_limit,
         cpu_estimate_percent = EXCLUDED.cpu_estimate_percent,
         memory_estimate_bytes = EXCLUDED.memory_estimate_bytes, updated_at = now()
       RETURNING ${COLUMNS}`,
      [
        rule.userId,
        rule.commandType,
        rule.limits.daily,
        rule.limits.weekly,
        rule.limits.monthly,
        rule.cpuEstimatePercent,
        rule.memoryEstimateBytes,
      ],
    );
    return toRule(result.rows[0]!);
  }

  async delete(userId: string, commandType: string): Promise<void> {
    const result = await this.db.query(
      'DELETE FROM command_quota_rules WHERE user_id = $1 AND command_type = $2',
      [userId, commandType],
    );
    if (result.rowCount === 0) {
      throw new NotFoundError('command quota rule', `${userId}/${commandType}`);
    }
  }
}

function toRule(row: RuleRow): CommandQuotaRule {
  const limit = (v: string | null) => (v === null ? null : Number(v));
  return {
    userId: row.user_id,
    commandType: row.command_type,
    limits: {
      daily: limit(row.daily_limit),
      weekly: limit(row.weekly_limit),
      monthly: limit(row.monthly_limit),
    },
    cpuEstimatePercent: row.cpu_estimate_percent,
    memoryEstimateBytes: Number(row.memory_estimate_bytes),
  };
}
