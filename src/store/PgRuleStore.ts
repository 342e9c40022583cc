import { NotFoundError } from '../errors.js';
import type { RuleStore } from '../limits/ports.js';
import type { Algorithm, Period, RateLimitRule, Scope } from '../limits/types.js';
import type { Database } from './Database.js';

interface RuleRow {
  name: string;
  scope: Scope;
  match: string;
  limit_count: string;
  window_ms: string | null;
  algorithm: Algorithm;
  period: Period | null;
  enabled: boolean;
  shadow: boolean;
  load_adaptive: boolean;
  description: string;
}

/**
 * Deletes a rule's counters, locking them in the order decisions lock counters (by key, byte
 * order) so that a delete and a decision never wait on each other in a cycle.
 */
const DELETE_COUNTERS = `DELETE FROM rate_limit_counters WHERE rule = $1 AND key IN (
  SELECT key FROM rate_limit_counters WHERE rule = $1 ORDER BY key COLLATE "C" FOR UPDATE)`;

const COLUMNS =
  'name, scope, match, limit_count, window_ms, algorithm, period, enabled, shadow, load_adaptive, description';

/** Rules in the rate_limit_rules table; a trigger NOTIFYs quota_config on every change. */
export class PgRuleStore implements RuleStore {
  constructor(private readonly db: Database) {}

  async list(scope?: Scope): Promise<RateLimitRule[]> {
    const result = await this.db.query<RuleRow>(
      `SELECT ${COLUMNS} FROM rate_limit_rules WHERE $1::text IS NULL OR scope = $1 ORDER BY scope, match, name`,
      [scope ?? null],
    );
    return result.rows.map(toRule);
  }

  async upsert(rule: RateLimitRule): Promise<RateLimitRule> {
    return this.db.transaction(async (client) => {
      const before = await client.query<RuleRow>(
        `SELECT ${COLUMNS} FROM rate_limit_rules WHERE name = $1 FOR UPDATE`,
        [rule.name],
      );
      const result = await client.query<RuleRow>(
        `INSERT INTO rate_limit_rules (${COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (name) DO UPDATE SET
           scope = EXCLUDED.scope, match = EXCLUDED.match, limit_count = EXCLUDED.limit_count,
           window_ms = EXCLUDED.window_ms, algorithm = EXCLUDED.algorithm, period = EXCLUDED.period,
           enabled = EXCLUDED.enabled, shadow = EXCLUDED.shadow,
           load_adaptive = EXCLUDED.load_adaptive, description = EXCLUDED.description,
           updated_at = now()
         RETURNING ${COLUMNS}`,
        [
          rule.name,
          rule.scope,
          rule.match,
          rule.limit,
          rule.windowMs,
          rule.algorithm,
          rule.period,
          rule.enabled,
          rule.shadow,
          rule.loadAdaptive,
          rule.description,
        ],
      );
      const old = before.rows[0];
      // Counter state means something only under the window and algorithm that made it.
      if (
        old &&
        (old.scope !== rule.scope ||
          old.algorithm !== rule.algorithm ||
          old.period !== rule.period ||
          Number(old.window_ms) !== (rule.windowMs ?? 0))
      ) {
        await client.query(DELETE_COUNTERS, [rule.name]);
      }
      return toRule(result.rows[0]!);
    });
  }

  async setEnabled(name: string, enabled: boolean): Promise<RateLimitRule> {
    const result = await this.db.query<RuleRow>(
      `UPDATE rate_limit_rules SET enabled = $2, updated_at = now() WHERE name = $1 RETURNING ${COLUMNS}`,
      [name, enabled],
    );
    const row = result.rows[0];
    if (!row) throw new NotFoundError('rate-limit rule', name);
    return toRule(row);
  }

  async replaceMatch(name: string, from: string, to: string): Promise<boolean> {
    const result = await this.db.query(
      'UPDATE rate_limit_rules SET match = $3, updated_at = now() WHERE name = $1 AND match = $2',
      [name, from, to],
    );
    return result.rowCount === 1;
  }

  async delete(name: string): Promise<void> {
    await this.db.transaction(async (client) => {
      const result = await client.query('DELETE FROM rate_limit_rules WHERE name = $1', [name]);
      if (result.rowCount === 0) throw new NotFoundError('rate-limit rule', name);
      await client.query(DELETE_COUNTERS, [name]);
    });
  }
}

function toRule(row: RuleRow): RateLimitRule {
  return {
    name: row.name,
    scope: row.scope,
    match: row.match,
    limit: Number(row.limit_count),
    windowMs: row.window_ms === null ? null : Number(row.window_ms),
    algorithm: row.algorithm,
    period: row.period,
    enabled: row.enabled,
    shadow: row.shadow,
    loadAdaptive: row.load_adaptive,
    description: row.description,
  };
}
