import type { AuditStore, PendingCounts, PendingViolation, Sighting } from '../audit/ports.js';
import type { Database } from './Database.js';

/**
 * Bounds of one audit write on the server: a write that cannot get its table's lock soon (a
 * long lock held by maintenance) fails with an error of the server's own, and the next flush
 * sends the batch again. These do not make "reported failed" mean "not committed": the
 * client's bound also covers the wait for a connection, so it can give up on a write the server
 * then commits. The batch id does that (see batchWrite).
 */
const WRITE_BOUNDS = `SET LOCAL lock_timeout = '500ms'; SET LOCAL statement_timeout = '1500ms'`;

/**
 * Records the batch's id first, in the batch's transaction: a batch whose id is there was
 * written (the id commits with its rows or not at all), so it is skipped. A second sending of a
 * batch still being written waits here on the id's row for the first to end, then skips it or
 * writes it.
 */
const CLAIM_BATCH = `INSERT INTO audit_batches (id) VALUES ($1) ON CONFLICT DO NOTHING`;

/** The audit's batched writes: one statement per batch, in a transaction with server bounds. */
export class PgAuditStore implements AuditStore {
  constructor(private readonly db: Database) {}

  async appendViolations(batchId: string, rows: readonly PendingViolation[]): Promise<boolean> {
    if (rows.length === 0) return true;
    const col = <K extends keyof PendingViolation>(k: K) => rows.map((r) => r[k]);
    return this.batchWrite(
      batchId,
      `INSERT INTO violations (first_at, last_at, count, source, rule, scope, key, ip, user_id,
         api_key_prefix, path, user_agent, host, reason)
       SELECT to_timestamp(f / 1000.0), to_timestamp(l / 1000.0), c, s, r, sc, k, ip, u, p, pa, ua, h, re
         FROM unnest($1::float8[], $2::float8[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::text[], $14::text[])
              AS t(f, l, c, s, r, sc, k, ip, u, p, pa, ua, h, re)`,
      [
        col('firstAtMs'),
        col('lastAtMs'),
        col('count'),
        col('source'),
        col('rule'),
        col('scope'),
        col('key'),
        col('ip'),
        col('userId'),
        col('apiKeyPrefix'),
        col('path'),
        col('userAgent'),
        col('host'),
        col('reason'),
      ],
    );
  }

  async recordSightings(rows: readonly Sighting[]): Promise<void> {
    if (rows.length === 0) return;
    // Grouped first: one statement may not update a row twice, and sorted so that replicas
    // writing the same rows lock them in one order.
    await this.write(
      `INSERT INTO identity_sightings (ip, identity, last_seen)
       SELECT ip, identity, to_timestamp(max(at) / 1000.0)
         FROM unnest($1::text[], $2::text[], $3::float8[]) AS t(ip, identity, at)
        GROUP BY ip, identity
        ORDER BY ip, identity
       ON CONFLICT (ip, identity) DO UPDATE
         SET last_seen = greatest(identity_sightings.last_seen, EXCLUDED.last_seen)`,
      [rows.map((r) => r.ip), rows.map((r) => r.identity), rows.map((r) => r.lastSeenMs)],
    );
  }

  async addStats(batchId: string, rows: readonly PendingCounts[]): Promise<boolean> {
    if (rows.length === 0) return true;
    const col = <K extends keyof PendingCounts>(k: K) => rows.map((r) => r[k]);
    return this.batchWrite(
      batchId,
      `INSERT INTO decision_stats AS d (hour, kind, name, allowed, denied, shadow_denied, degraded)
       SELECT to_timestamp(h / 1000.0), k, n, a, de, s, dg
         FROM unnest($1::float8[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                     $6::bigint[], $7::bigint[]) WITH ORDINALITY AS t(h, k, n, a, de, s, dg, i)
        ORDER BY i
       ON CONFLICT (hour, kind, name) DO UPDATE
         SET allowed = d.allowed + EXCLUDED.allowed,
             denied = d.denied + EXCLUDED.denied,
             shadow_denied = d.shadow_denied + EXCLUDED.shadow_denied,
             degraded = d.degraded + EXCLUDED.degraded`,
      [
        col('hourMs'),
        col('kind'),
        col('name'),
        col('allowed'),
        col('denied'),
        col('shadowDenied'),
        col('degraded'),
      ],
    );
  }

  async clock(): Promise<number> {
    const result = await this.db.query<{ now: number }>(
      `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`,
    );
    return result.rows[0]!.now;
  }

  /** `sql` in a transaction with the batch's id; false, writing nothing, when it was written. */
  private async batchWrite(batchId: string, sql: string, values: unknown[]): Promise<boolean> {
    return this.db.transaction(async (client) => {
      await client.query(WRITE_BOUNDS);
      const claimed = await client.query(CLAIM_BATCH, [batchId]);
      if (claimed.rowCount === 0) return false;
      await client.query(sql, values);
      return true;
    });
  }

  private async write(sql: string, values: unknown[]): Promise<void> {
    await this.db.transaction(async (client) => {
      await client.query(WRITE_BOUNDS);
      await client.query(sql, values);
    });
  }
}
