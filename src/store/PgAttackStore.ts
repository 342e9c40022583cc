import type {
  AttackStore,
  DetectionResult,
  DetectionSettings,
  StoredBlock,
} from '../audit/ports.js';
import type { Database } from './Database.js';

/** The rule a block's own denials carry: they must not keep the block's key flagged. */
const BLOCK_RULE = 'attack-block';
/** Scopes a block applies to: a caller's IP, user or API key (not a resource everyone shares). */
const BLOCKABLE = `('ip', 'user', 'api_key')`;

/**
 * Attack patterns in attack_flags, found from the violations and identity sightings of every
 * replica, on the database's clock. Writing attack_flags notifies every replica (trigger,
 * payload 'attack_flags'), so the flags are written only when a pattern is found.
 */
export class PgAttackStore implements AttackStore {
  constructor(private readonly db: Database) {}

  async detect(s: DetectionSettings): Promise<DetectionResult> {
    return this.db.transaction(async (client) => {
      const now = (await client.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!
        .now;
      const found = await client.query<{ kind: string; scope: string; key: string; n: string }>(
        `SELECT 'repeated_denials' AS kind, scope, key, sum(count)::text AS n
           FROM violations
          WHERE last_at > $1::timestamptz - make_interval(secs => $2)
            AND rule <> '${BLOCK_RULE}' AND key <> ''
          GROUP BY scope, key HAVING sum(count) > $3
         UNION ALL
         SELECT 'identity_spread', 'ip', ip, count(*)::text
           FROM identity_sightings
          WHERE last_seen > $1::timestamptz - make_interval(secs => $2)
          GROUP BY ip HAVING count(*) >= $4
          ORDER BY 1, 2, 3`,
        [now, s.windowS, s.denials, s.identities],
      );
      let blocked = 0;
      if (found.rows.length > 0) {
        // A flag is new when it was not there, or its pattern had stopped for a whole window:
        // only then does its block start. A block that ran out while the pattern goes on is
        // not renewed, so it lasts what QUOTA_BLOCK_S says.
        const flags = await client.query<{ blocked: boolean }>(
          `INSERT INTO attack_flags AS f (kind, scope, key, count, first_seen, last_seen, blocked_until)
           SELECT kind, scope, key, n, $4, $4,
                  CASE WHEN $6 > 0 AND scope IN ${BLOCKABLE}
                       THEN $4::timestamptz + make_interval(secs => $6) END
             FROM unnest($1::text[], $2::text[], $3::text[], $7::bigint[]) AS t(kind, scope, key, n)
           ON CONFLICT (kind, scope, key) DO UPDATE
             SET count = EXCLUDED.count,
                 first_seen = CASE WHEN f.last_seen <= $4::timestamptz - make_interval(secs => $5)
                                   THEN EXCLUDED.first_seen ELSE f.first_seen END,
                 blocked_until = CASE WHEN f.last_seen <= $4::timestamptz - make_interval(secs => $5)
                                      THEN EXCLUDED.blocked_until ELSE f.blocked_until END,
                 last_seen = EXCLUDED.last_seen
           RETURNING blocked_until IS NOT NULL AND first_seen = $4 AS blocked`,
          [
            found.rows.map((r) => r.kind),
            found.rows.map((r) => r.scope),
            found.rows.map((r) => r.key),
            now,
            s.windowS,
            s.blockS,
            found.rows.map((r) => r.n),
          ],
        );
        blocked = flags.rows.filter((r) => r.blocked).length;
      }
      const deleted = await client.query(
        `DELETE FROM identity_sightings WHERE last_seen <= $1::timestamptz - make_interval(secs => $2)`,
        [now, s.windowS],
      );
      return { flagged: found.rows.length, blocked, sightingsDeleted: deleted.rowCount ?? 0 };
    });
  }

  async activeBlocks(): Promise<StoredBlock[]> {
    const result = await this.db.query<{ scope: string; key: string; remaining_ms: number }>(
      `SELECT scope, key,
              (extract(epoch FROM max(blocked_until) - clock_timestamp()) * 1000)::float8 AS remaining_ms
         FROM attack_flags
        WHERE blocked_until > clock_timestamp() AND scope IN ${BLOCKABLE}
        GROUP BY scope, key`,
    );
    return result.rows.map((r) => ({ scope: r.scope, key: r.key, remainingMs: r.remaining_ms }));
  }
}
