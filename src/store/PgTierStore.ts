import type { TierStore } from '../quotas/ports.js';
import type { TierName } from '../quotas/types.js';
import type { Database } from './Database.js';

/**
 * Users' tiers in user_tiers; a user without a row is `default`, so setting `default` deletes
 * the row. A trigger NOTIFYs quota_config on every change.
 */
export class PgTierStore implements TierStore {
  constructor(private readonly db: Database) {}

  async list(): Promise<Map<string, TierName>> {
    const result = await this.db.query<{ user_id: string; tier: TierName }>(
      'SELECT user_id, tier FROM user_tiers',
    );
    return new Map(result.rows.map((r) => [r.user_id, r.tier]));
  }

  async get(userId: string): Promise<TierName> {
    const result = await this.db.query<{ tier: TierName }>(
      'SELECT tier FROM user_tiers WHERE user_id = $1',
      [userId],
    );
    return result.rows[0]?.tier ?? 'default';
  }

  async set(userId: string, tier: TierName): Promise<void> {
    if (tier === 'default') {
      await this.db.query('DELETE FROM user_tiers WHERE user_id = $1', [userId]);
      return;
    }
    await this.db.query(
      `INSERT INTO user_tiers (user_id, tier) VALUES ($1, $2)
       ON CONFLICT (user_id) DO UPDATE SET tier = EXCLUDED.tier, updated_at = now()`,
      [userId, tier],
    );
  }
}
