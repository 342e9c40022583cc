import type { Role, TokenGrant, TokenInfo } from './types.js';

/**
 * Bearer tokens, kept only as their hashes. Implementations MUST be safe for concurrent use
 * across every replica sharing the store, MUST tell every replica of a change that matters to
 * authentication (a token created or revoked) through the change feed with the payload
 * `access_tokens`, MUST NOT do so for `markUsed`, and throw NotFoundError for an unknown id,
 * StoreUnavailableError when the store does not answer.
 */
export interface TokenStore {
  /** Every token's grant, revoked ones included. */
  grants(): Promise<TokenGrant[]>;
  /** The grant of the token with this hash, if one exists. */
  findGrant(hash: Buffer): Promise<TokenGrant | undefined>;
  create(name: string, role: Role, hash: Buffer): Promise<TokenInfo>;
  /** Every token, oldest first. */
  list(): Promise<TokenInfo[]>;
  /** Sets `revokedAt` (the store's clock) unless it is set already. */
  revoke(id: number): Promise<TokenInfo>;
  /** Sets `lastUsedAt` of these tokens to the store's clock. */
  markUsed(ids: readonly number[]): Promise<void>;
  /**
   * Stores an admin token with this hash unless one with this hash exists (its role and
   * revocation stay as they are); race-safe across replicas.
   */
  ensureAdmin(name: string, hash: Buffer): Promise<{ created: boolean; revoked: boolean }>;
  /**
   * Stores an admin token only if the store holds no token at all, revoked ones included;
   * whether it did. Of replicas starting at once on an empty store, exactly one does.
   */
  createAdminIfNone(name: string, hash: Buffer): Promise<boolean>;
}
