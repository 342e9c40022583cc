import type { ActiveBlock, BlockSource, DecidedCaller } from '../core/decisions.js';
import { apiKeyPrefix } from './apiKeyPrefix.js';
import type { StoredBlock } from './ports.js';

/** A monotonic clock in ms (performance.now): host clock changes do not move it. */
export type MonotonicClock = () => number;

/**
 * The blocks in force when they were read, each with its end on this process's monotonic
 * clock: the store said how long each had left by its own clock, so neither this host's wall
 * clock nor its skew against the database's matters.
 */
export class BlockIndex {
  /** Scope → key → end (monotonic ms). API keys by their hash prefix. */
  private readonly ends = new Map<string, Map<string, number>>();

  /** `blocks` as read by a query sent at `readAt` (monotonic ms): they end no later than said. */
  constructor(blocks: readonly StoredBlock[], readAt: number) {
    for (const b of blocks) {
      let keys = this.ends.get(b.scope);
      if (!keys) {
        keys = new Map();
        this.ends.set(b.scope, keys);
      }
      const end = readAt + b.remainingMs;
      if (end > (keys.get(b.key) ?? -Infinity)) keys.set(b.key, end);
    }
  }

  get empty(): boolean {
    return this.ends.size === 0;
  }

  /** Time `key` of `scope` is still blocked at `now`, in ms; 0 when it is not. */
  remaining(scope: string, key: string, now: number): number {
    const end = this.ends.get(scope)?.get(key);
    return end === undefined || end <= now ? 0 : end - now;
  }

  has(scope: string): boolean {
    return this.ends.has(scope);
  }
}

/**
 * The BlockSource of every replica: answered from the last index read (kept current by the
 * change feed), so asking costs a few Map lookups. A block that has run out stops denying at
 * once, before the index is read again.
 */
export class AttackBlocks implements BlockSource {
  constructor(
    private readonly current: () => BlockIndex | undefined,
    private readonly clock: MonotonicClock = () => performance.now(),
  ) {}

  blockFor(caller: DecidedCaller): ActiveBlock | null {
    const index = this.current();
    if (!index || index.empty) return null;
    const now = this.clock();
    if (caller.ip !== undefined) {
      const ms = index.remaining('ip', caller.ip, now);
      if (ms > 0) return { scope: 'ip', key: caller.ip, remainingMs: ms };
    }
    if (caller.userId !== undefined) {
      const ms = index.remaining('user', caller.userId, now);
      if (ms > 0) return { scope: 'user', key: caller.userId, remainingMs: ms };
    }
    if (caller.apiKeyHash !== undefined && index.has('api_key')) {
      const ms = index.remaining('api_key', apiKeyPrefix(caller.apiKeyHash), now);
      // The key is the caller's hash, as a rule's denial of it names it: never the raw key.
      if (ms > 0) return { scope: 'api_key', key: caller.apiKeyHash, remainingMs: ms };
    }
    return null;
  }
}
