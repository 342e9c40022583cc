import type {
  AttackStore,
  DetectionResult,
  DetectionSettings,
  StoredBlock,
} from '../audit/ports.js';
import type { AttackPattern, BlockScope } from '../audit/types.js';
import { ATTACK_BLOCK_RULE } from '../core/decisions.js';
import { attackColumns, attackFromRow, type StoredAttack } from './attackRow.js';
import type { Database } from './Database.js';

/** Scopes a block applies to: a caller's IP, user or API key (not a resource everyone shares). */
const BLOCKABLE = `('ip', 'user', 'api_key')`;

/**
 * Attack patterns in attack_flags, found from the violations and identity sightings of every
 * replica, on the database's clock. Writing attack_flags notifies every replica (trigger,
 * payload 'attack_flags'), so the flags are written only when a pattern is found or an operator
 * lifts a block.
 */
export class PgAttackStore implements AttackStore {
  constructor(private readonly db: Database) {}

  async detect(s: DetectionSettings): Promise<DetectionResult> {
    return this.db.transaction(async (client) => {
      const now = (await client.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!
        .now;
      // Each pattern over its threshold in the window (n), and whether it is over it in what
      // came after its flag's block ended (renew): a block's own denials are not the pattern,
      // and sightings are not recorded from calls a block denied, so what came before the
      // block ended, the evidence it was set for, does not set it again. A block lifted by an
      // operator ended when it was lifted (blocked_until is that time): the same holds.
      // Identities count users and API keys apart: a NAT of ten users with a key each is ten.
      const found = await client.query<{
        kind: string;
        scope: string;
        key: string;
        n: string;
        renew: boolean;
      }>(
        `WITH denials AS (
           SELECT v.scope, v.key, v.count, v.last_at > coalesce(f.blocked_until, '-infinity') AS fresh
             FROM violations v
             LEFT JOIN attack_flags f
               ON f.kind = 'repeated_denials' AND f.scope = v.scope AND f.key = v.key
            WHERE v.last_at > $1::timestamptz - make_interval(secs => $2)
              AND v.rule <> $5 AND v.key <> ''),
         sightings AS (
           SELECT s.ip, s.identity LIKE 'user:%' AS is_user,
                  s.last_seen > coalesce(f.blocked_until, '-infinity') AS fresh
             FROM identity_sightings s
             LEFT JOIN attack_flags f
               ON f.kind = 'identity_spread' AND f.scope = 'ip' AND f.key = s.ip
            WHERE s.last_seen > $1::timestamptz - make_interval(secs => $2))
         SELECT 'repeated_denials' AS kind, scope, key, sum(count)::text AS n,
                coalesce(sum(count) FILTER (WHERE fresh), 0) > $3 AS renew
           FROM denials
          GROUP BY scope, key HAVING sum(count) > $3
         UNION ALL
         SELECT 'identity_spread', 'ip', ip,
                greatest(count(*) FILTER (WHERE is_user), count(*) FILTER (WHERE NOT is_user))::text,
                greatest(count(*) FILTER (WHERE is_user AND fresh),
                         count(*) FILTER (WHERE NOT is_user AND fresh)) >= $4
           FROM sightings
          GROUP BY ip
         HAVING greatest(count(*) FILTER (WHERE is_user), count(*) FILTER (WHERE NOT is_user)) >= $4
          ORDER BY 1, 2, 3`,
        [now, s.windowS, s.denials, s.identities, ATTACK_BLOCK_RULE],
      );
      let blocked = 0;
      if (found.rows.length > 0) {
        // A block starts when a flag is new (it was not there, or its pattern had stopped for a
        // whole window), and again when its block has ended (or it had none) and the pattern
        // goes on after that; a block in force is left as it is. A lift that commits while this
        // runs is kept: the upsert sees the row as the lift left it, and `renew` was read while
        // the block was in force (nothing came after its end then).
        const block = `CASE WHEN $6 > 0 AND EXCLUDED.scope IN ${BLOCKABLE}
                            THEN $4::timestamptz + make_interval(secs => $6) END`;
        // The inserted row's blocked_until is the block when the pattern is over the threshold
        // after the flag's block ended (always so for a flag not there yet).
        const flags = await client.query<{ blocked: boolean }>(
          `INSERT INTO attack_flags AS f (kind, scope, key, count, first_seen, last_seen, blocked_until)
           SELECT kind, scope, key, n, $4, $4,
                  CASE WHEN renew AND $6 > 0 AND scope IN ${BLOCKABLE}
                       THEN $4::timestamptz + make_interval(secs => $6) END
             FROM unnest($1::text[], $2::text[], $3::text[], $7::bigint[], $8::bool[])
                  AS t(kind, scope, key, n, renew)
           ON CONFLICT (kind, scope, key) DO UPDATE
             SET count = EXCLUDED.count,
                 first_seen = CASE WHEN f.last_seen <= $4::timestamptz - make_interval(secs => $5)
                                   THEN EXCLUDED.first_seen ELSE f.first_seen END,
                 blocked_until = CASE
                   WHEN f.blocked_until > $4::timestamptz THEN f.blocked_until
                   WHEN f.last_seen <= $4::timestamptz - make_interval(secs => $5) THEN ${block}
                   ELSE coalesce(EXCLUDED.blocked_until, f.blocked_until) END,
                 last_seen = EXCLUDED.last_seen
           RETURNING blocked_until IS NOT NULL
                     AND blocked_until = $4::timestamptz + make_interval(secs => $6) AS blocked`,
          [
            found.rows.map((r) => r.kind),
            found.rows.map((r) => r.scope),
            found.rows.map((r) => r.key),
            now,
            s.windowS,
            s.blockS,
            found.rows.map((r) => r.n),
            found.rows.map((r) => r.renew),
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

  async lift(scope: BlockScope, key: string): Promise<AttackPattern[]> {
    // One time for every kind lifted. The statement trigger notifies the replicas even when
    // no row changed (a key not blocked): a spare reload of the blocks, nothing written.
    // Times as epoch ms the way the reports read them, so the lift's time is the one
    // GetViolations shows to the millisecond. MATERIALIZED: a plain subquery may be scanned
    // again per row, each scan reading the clock anew (seen: two kinds 1 ms apart).
    const result = await this.db.query<StoredAttack>(
      `WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now)
       UPDATE attack_flags f SET blocked_until = t.now
         FROM t
        WHERE f.scope = $1 AND f.key = $2 AND f.blocked_until > t.now
        RETURNING ${attackColumns('f')}`,
      [scope, key],
    );
    return result.rows.map(attackFromRow).sort((a, b) => a.kind.localeCompare(b.kind));
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
