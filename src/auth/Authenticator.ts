import { coalesced } from '../core/coalesced.js';
import { followChanges } from '../core/followChanges.js';
import type { ChangeFeed } from '../core/ports.js';
import type { Logger } from '../log.js';
import type { TokenStore } from './ports.js';
import { tokenHashKey } from './tokenSecret.js';
import { roleAllows, type AuthResult, type Role, type TokenGrant } from './types.js';

/** Options of {@link Authenticator}; times in ms. */
export interface AuthenticatorOptions {
  /**
   * Reload of every grant, as a safety net under the change feed (a feed that is down or
   * half-open delivers nothing): it bounds how long a revocation can go unseen here.
   * @default 1000
   */
  readonly refreshMs?: number;
  /** How long a hash the store did not know is refused without asking it again. @default 2000 */
  readonly unknownTtlMs?: number;
  /** Unknown hashes remembered at most; the oldest goes first. @default 10000 */
  readonly unknownCapacity?: number;
  /** Store lookups of unknown hashes in flight at most; beyond, a call is refused at once. @default 4 */
  readonly maxLookups?: number;
  /** Monotonic clock. @default performance.now */
  readonly now?: () => number;
}

/** Longer than any token worth hashing: QUOTA_ADMIN_TOKEN and made ones are far shorter. */
const MAX_TOKEN_LENGTH = 512;

const UNAUTHENTICATED: AuthResult = { ok: false, reason: 'unauthenticated' };
const FORBIDDEN: AuthResult = { ok: false, reason: 'forbidden' };

/**
 * Decides whether a bearer token may make a call, from this replica's copy of every token's
 * grant (hash → role, revoked), so that a call costs one SHA-256 and one map lookup.
 *
 * The copy follows the change feed: a token created or revoked on any replica (or by the CLI)
 * is reloaded here as soon as its notification arrives, after the feed reconnects, and at the
 * latest after `refreshMs`; a failed reload keeps the last copy (calls go on while the
 * database is away). A hash not in the copy may be a token created moments ago elsewhere, so it
 * is looked up in the store once: at most `maxLookups` at a time, one per hash, and a hash the
 * store does not know is refused without asking again for `unknownTtlMs`, so that a flood of
 * made-up tokens costs the database little.
 *
 * Calls a token authenticated are remembered (per token, not per call) and written in one
 * batch by {@link flushUsage}.
 */
export class Authenticator {
  private grants = new Map<string, TokenGrant>();
  private readonly unknown = new Map<string, number>();
  private readonly lookups = new Map<string, Promise<TokenGrant | undefined>>();
  /** Bumped when a reload starts: a lookup that started before it must not add its answer. */
  private generation = 0;
  private used = new Set<number>();
  private loaded = false;
  private failing = false;
  private unfollow: () => void = () => undefined;
  private readonly refreshMs: number;
  private readonly unknownTtlMs: number;
  private readonly unknownCapacity: number;
  private readonly maxLookups: number;
  private readonly now: () => number;

  constructor(
    private readonly store: TokenStore,
    private readonly logger: Logger,
    options: AuthenticatorOptions = {},
  ) {
    this.refreshMs = options.refreshMs ?? 1000;
    this.unknownTtlMs = options.unknownTtlMs ?? 2000;
    this.unknownCapacity = options.unknownCapacity ?? 10_000;
    this.maxLookups = options.maxLookups ?? 4;
    this.now = options.now ?? (() => performance.now());
  }

  /** Loads every grant and follows `feed`. */
  async start(feed: ChangeFeed): Promise<void> {
    this.unfollow = await followChanges(feed, 'access_tokens', () => this.reload(), this.refreshMs);
  }

  stop(): void {
    this.unfollow();
  }

  /** Whether the grants have been loaded at least once. */
  get ready(): boolean {
    return this.loaded;
  }

  /** Reloads every grant now; concurrent calls coalesce into at most one more load. */
  readonly reload: () => Promise<void> = coalesced(async () => {
    this.generation++;
    try {
      const grants = new Map<string, TokenGrant>();
      for (const g of await this.store.grants()) grants.set(g.hash.toString('base64'), g);
      this.grants = grants;
      this.loaded = true;
      if (this.failing) this.logger.info('token reload works again');
      this.failing = false;
    } catch (err) {
      // Retried at the next refresh; logged once per outage, not every second.
      if (!this.failing) this.logger.warn({ err }, 'token reload failed; keeping the last copy');
      this.failing = true;
    }
  });

  /**
   * Whether `token` (undefined when the call carried none) may call a method that needs
   * `required`. Synchronous for a token in the copy; a promise when the store is asked.
   * Throws (through the promise) StoreUnavailableError when the store must be asked and does
   * not answer.
   */
  check(token: string | undefined, required: Role): AuthResult | Promise<AuthResult> {
    if (token === undefined || token === '' || token.length > MAX_TOKEN_LENGTH)
      return UNAUTHENTICATED;
    const key = tokenHashKey(token);
    const grant = this.grants.get(key);
    if (grant) return this.decide(grant, required);
    const found = this.lookup(key);
    if (found === undefined) return UNAUTHENTICATED;
    return found.then((g) => (g ? this.decide(g, required) : UNAUTHENTICATED));
  }

  /** Writes when each token that authenticated a call since the last flush was used. */
  async flushUsage(): Promise<number> {
    if (this.used.size === 0) return 0;
    const ids = [...this.used];
    this.used = new Set();
    try {
      await this.store.markUsed(ids);
    } catch (err) {
      for (const id of ids) this.used.add(id);
      throw err;
    }
    return ids.length;
  }

  private decide(grant: TokenGrant, required: Role): AuthResult {
    if (grant.revoked) return UNAUTHENTICATED;
    this.used.add(grant.id);
    return roleAllows(grant.role, required) ? { ok: true, tokenId: grant.id } : FORBIDDEN;
  }

  /** The store's answer for a hash not in the copy, or undefined to refuse without asking. */
  private lookup(key: string): Promise<TokenGrant | undefined> | undefined {
    const until = this.unknown.get(key);
    if (until !== undefined) {
      if (until > this.now()) return undefined;
      this.unknown.delete(key);
    }
    const pending = this.lookups.get(key);
    if (pending) return pending;
    if (this.lookups.size >= this.maxLookups) return undefined;
    const generation = this.generation;
    const lookup = this.store
      .findGrant(Buffer.from(key, 'base64'))
      .then((grant) => {
        // A reload that started meanwhile read the store later than this lookup may have:
        // its copy (a revocation included) wins.
        if (grant && generation === this.generation) this.grants.set(key, grant);
        if (!grant) this.rememberUnknown(key);
        return grant;
      })
      .finally(() => this.lookups.delete(key));
    this.lookups.set(key, lookup);
    return lookup;
  }

  private rememberUnknown(key: string): void {
    if (this.unknown.size >= this.unknownCapacity) {
      const oldest = this.unknown.keys().next();
      if (!oldest.done) this.unknown.delete(oldest.value);
    }
    this.unknown.set(key, this.now() + this.unknownTtlMs);
  }
}
