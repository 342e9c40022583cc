import type { TokenStore } from '../auth/ports.js';
import type { Role, TokenGrant, TokenInfo } from '../auth/types.js';
import { NotFoundError } from '../errors.js';
import type { Database } from './Database.js';

interface TokenRow {
  id: string;
  name: string;
  role: Role;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

interface GrantRow {
  id: string;
  token_hash: Buffer;
  role: Role;
  revoked: boolean;
}

const COLUMNS = 'id, name, role, created_at, last_used_at, revoked_at';
const GRANT_COLUMNS = 'id, token_hash, role, revoked_at IS NOT NULL AS revoked';

/**
 * Tokens in the access_tokens table, by hash only. A trigger NOTIFYs quota_config
 * 'access_tokens' when a token is created, deleted, or its role or revocation changes; the
 * batched last-used writes touch no column it watches.
 */
export class PgTokenStore implements TokenStore {
  constructor(private readonly db: Database) {}

  async grants(): Promise<TokenGrant[]> {
    const result = await this.db.query<GrantRow>(`SELECT ${GRANT_COLUMNS} FROM access_tokens`);
    return result.rows.map(toGrant);
  }

  async findGrant(hash: Buffer): Promise<TokenGrant | undefined> {
    const result = await this.db.query<GrantRow>(
      `SELECT ${GRANT_COLUMNS} FROM access_tokens WHERE token_hash = $1`,
      [hash],
      { name: 'find-token-grant' },
    );
    const row = result.rows[0];
    return row && toGrant(row);
  }

  async create(name: string, role: Role, hash: Buffer): Promise<TokenInfo> {
    const result = await this.db.query<TokenRow>(
      `INSERT INTO access_tokens (name, role, token_hash) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [name, role, hash],
    );
    return toInfo(result.rows[0]!);
  }

  async list(): Promise<TokenInfo[]> {
    const result = await this.db.query<TokenRow>(
      `SELECT ${COLUMNS} FROM access_tokens ORDER BY id`,
    );
    return result.rows.map(toInfo);
  }

  async revoke(id: number): Promise<TokenInfo> {
    const result = await this.db.query<TokenRow>(
      `UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
       RETURNING ${COLUMNS}`,
      [id],
    );
    const row = result.rows[0];
    if (!row) throw new NotFoundError('token', String(id));
    return toInfo(row);
  }

  async markUsed(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query(
      'UPDATE access_tokens SET last_used_at = now() WHERE id = ANY($1::bigint[])',
      [ids],
    );
  }

  async ensureAdmin(name: string, hash: Buffer): Promise<{ created: boolean; revoked: boolean }> {
    // ON CONFLICT makes concurrent starts with one QUOTA_ADMIN_TOKEN store it once; an existing
    // row is left as it is, so a revoked token stays revoked across restarts.
    const inserted = await this.db.query(
      `INSERT INTO access_tokens (name, role, token_hash) VALUES ($1, 'admin', $2)
       ON CONFLICT (token_hash) DO NOTHING`,
      [name, hash],
    );
    if (inserted.rowCount === 1) return { created: true, revoked: false };
    const grant = await this.findGrant(hash);
    return { created: false, revoked: grant?.revoked ?? false };
  }

  async createAdminIfNone(name: string, hash: Buffer): Promise<boolean> {
    return this.db.transaction(async (client) => {
      // NOT EXISTS alone would let two replicas that start together both see an empty table:
      // the lock makes the second wait and then see the first one's token.
      await client.query(
        `SELECT pg_advisory_xact_lock(hashtextextended('quota-authority:first-admin-token', 0))`,
      );
      const result = await client.query(
        `INSERT INTO access_tokens (name, role, token_hash)
         SELECT $1, 'admin', $2 WHERE NOT EXISTS (SELECT 1 FROM access_tokens)`,
        [name, hash],
      );
      return result.rowCount === 1;
    });
  }
}

function toGrant(row: GrantRow): TokenGrant {
  return { id: Number(row.id), hash: row.token_hash, role: row.role, revoked: row.revoked };
}

function toInfo(row: TokenRow): TokenInfo {
  return {
    id: Number(row.id),
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
