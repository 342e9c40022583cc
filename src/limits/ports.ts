import type { CounterDecision, CounterRequest, RateLimitRule, Scope } from './types.js';

/**
 * Persistence of rules. Implementations MUST be safe for concurrent use and throw
 * NotFoundError for an unknown name, StoreUnavailableError when the store does not answer.
 */
export interface RuleStore {
  list(scope?: Scope): Promise<RateLimitRule[]>;
  /** Creates or replaces by name; counters of a rule whose counting changed are reset. */
  upsert(rule: RateLimitRule): Promise<RateLimitRule>;
  setEnabled(name: string, enabled: boolean): Promise<RateLimitRule>;
  delete(name: string): Promise<void>;
  /**
   * Sets the match of rule `name` to `to` if it still is `from`; whether it was. Counters stay
   * as they are.
   */
  replaceMatch(name: string, from: string, to: string): Promise<boolean>;
}

/**
 * The atomic decision over several counters: all are checked, and only if none that is not a
 * shadow denies are all counted. MUST be atomic across every replica sharing the store, use the
 * store's clock, and return the first answer again for a repeated idempotency key.
 */
export interface LimitStore {
  check(
    counters: readonly CounterRequest[],
    hits: number,
    idempotencyKey: string | null,
    timezone: string,
  ): Promise<CounterDecision>;
  /**
   * Runs `submit`, whose check calls go to the store together and in the order made: a check
   * on a counter is not decided before an earlier one of the same `submit` on it.
   */
  together<T>(submit: () => T): T;
  /** The first answer stored for `idempotencyKey` and not expired, marked replayed; or null. */
  replay(idempotencyKey: string): Promise<CounterDecision | null>;
}

/** Expiry of rate-limit state. MAY run on any replica; callers make it one at a time. */
export interface LimitMaintenance {
  /** Deletes counters and idempotency answers that can no longer affect a decision. */
  deleteExpired(): Promise<{ counters: number; idempotencyKeys: number }>;
}

/**
 * Server secrets kept in the store. MUST be race-safe across replicas: of concurrent first
 * calls for one name, every one gets the one value that was stored.
 */
export interface SecretStore {
  /** The secret stored under `name`, storing `candidate` first if there is none. */
  getOrCreate(name: string, candidate: Uint8Array): Promise<Buffer>;
}
