import { apiKeyPrefix } from './apiKeyPrefix.js';
import type { Sighting } from './ports.js';

/**
 * An IP seen with at most one user and one API key within the window: what nearly every address
 * is, so it is kept small and apart, and never written.
 */
interface Single {
  user: string | undefined;
  userAt: number;
  /** An API key hash. */
  key: string | undefined;
  keyAt: number;
  last: number;
}

/** An IP seen with a second user or a second API key: each identity with its last time. */
interface Tracked {
  /** User id → last seen; least recently seen first. */
  readonly users: Map<string, number>;
  /** API key hash → last seen; least recently seen first. */
  readonly keys: Map<string, number>;
  last: number;
}

/** A sighting seen since it was last written. */
interface Dirty {
  readonly ip: string;
  readonly identity: string;
  lastSeenMs: number;
}

/** Sightings to write; marked written with {@link IdentityTracker.written} once they are. */
export interface SightingBatch {
  readonly rows: readonly Sighting[];
}

/** Limits of an {@link IdentityTracker}. */
export interface IdentityTrackerOptions {
  /** How long an identity counts after it was seen, in ms. */
  readonly windowMs: number;
  /**
   * Users kept per IP, and API keys kept per IP (each): at least the detection threshold, else
   * it could never be met. Past it an IP's least recently seen one of that kind makes room.
   */
  readonly perIp: number;
  /** Identities kept over all IPs with several. @default 100_000 */
  readonly total?: number;
  /** IPs with one user (and/or one API key) kept. @default 100_000 */
  readonly singles?: number;
}

type Kind = 'user' | 'key';

/**
 * Which identities each IP presented within the window, as this replica saw them, counted by
 * kind (users apart from API keys: ten users behind one NAT, each with a key of their own, are
 * ten of each, not twenty). An IP seen with one user and one API key is only remembered (first
 * identities and times, in a least-recently-seen map of its own) and never written; a second
 * distinct user or API key makes it tracked, and from then on what changes is written, so one
 * user behind one address costs the database nothing; the database unions what every replica
 * saw.
 *
 * Bounded, and new sightings always win: past `singles` remembered IPs or `total` tracked
 * identities the least recently seen make room (counted in `evicted`), so a flood of addresses
 * cannot keep an attacker from being seen. Every call costs a few Map operations; `pending`
 * costs what changed since the last write (expiry takes the least recently seen from the front
 * of each map and stops at the first still in the window).
 */
export class IdentityTracker {
  private readonly singles = new Map<string, Single>();
  private readonly tracked = new Map<string, Tracked>();
  /** Sightings not written yet, by `ip\0identity`. */
  private readonly dirty = new Map<string, Dirty>();
  private trackedCount = 0;
  private evictedCount = 0;
  private readonly total: number;
  private readonly singlesCap: number;

  constructor(private readonly options: IdentityTrackerOptions) {
    // One IP at its per-IP bound of both kinds must fit, with room for another.
    this.total = Math.max(options.total ?? 100_000, 4 * options.perIp);
    this.singlesCap = options.singles ?? 100_000;
  }

  /** Identities tracked, over every IP seen with several. */
  get size(): number {
    return this.trackedCount;
  }

  /** IPs remembered with one user and/or one API key. */
  get singleIps(): number {
    return this.singles.size;
  }

  /** Sightings forgotten before they left the window, to make room for newer ones. */
  get evicted(): number {
    return this.evictedCount;
  }

  /** A call from `ip` carrying `userId` and/or the API key hash `apiKeyHash`, at `at` (ms). */
  seen(ip: string, userId: string | undefined, apiKeyHash: string | undefined, at: number): void {
    const t = this.tracked.get(ip);
    if (t) {
      // Most recently seen last: eviction and expiry take from the front.
      this.tracked.delete(ip);
      this.tracked.set(ip, t);
      if (at > t.last) t.last = at;
      const since = at - this.options.windowMs;
      if (userId !== undefined) this.note(ip, t, 'user', userId, at, since);
      if (apiKeyHash !== undefined) this.note(ip, t, 'key', apiKeyHash, at, since);
      return;
    }
    const s = this.singles.get(ip);
    if (!s) {
      if (this.singles.size >= this.singlesCap) this.evictSingle();
      this.singles.set(ip, { user: userId, userAt: at, key: apiKeyHash, keyAt: at, last: at });
      return;
    }
    const since = at - this.options.windowMs;
    // One that left the window no longer counts: the next one is not a second.
    if (s.userAt < since) s.user = undefined;
    if (s.keyAt < since) s.key = undefined;
    if (
      (userId !== undefined && s.user !== undefined && userId !== s.user) ||
      (apiKeyHash !== undefined && s.key !== undefined && apiKeyHash !== s.key)
    ) {
      this.singles.delete(ip);
      this.promote(ip, s, userId, apiKeyHash, at);
      return;
    }
    if (userId !== undefined) {
      s.userAt = s.user === undefined ? at : Math.max(s.userAt, at);
      s.user = userId;
    }
    if (apiKeyHash !== undefined) {
      s.keyAt = s.key === undefined ? at : Math.max(s.keyAt, at);
      s.key = apiKeyHash;
    }
    if (at > s.last) s.last = at;
    this.singles.delete(ip);
    this.singles.set(ip, s);
  }

  /**
   * Forgets IPs not seen since `now` minus the window; returns the sightings of tracked IPs seen
   * since they were last written (all of an IP's when it became tracked).
   */
  pending(now: number): SightingBatch {
    const since = now - this.options.windowMs;
    for (const [ip, s] of this.singles) {
      if (s.last >= since) break;
      this.singles.delete(ip);
    }
    for (const [ip, t] of this.tracked) {
      if (t.last >= since) break;
      this.drop(ip, t);
    }
    const rows: Sighting[] = [];
    for (const d of this.dirty.values())
      rows.push({ ip: d.ip, identity: d.identity, lastSeenMs: d.lastSeenMs });
    return { rows };
  }

  /** Marks `batch` written: its sightings are not written again unless seen again later. */
  written(batch: SightingBatch): void {
    for (const r of batch.rows) {
      const key = `${r.ip}\0${r.identity}`;
      const d = this.dirty.get(key);
      if (d && d.lastSeenMs <= r.lastSeenMs) this.dirty.delete(key);
    }
  }

  private promote(
    ip: string,
    s: Single,
    userId: string | undefined,
    apiKeyHash: string | undefined,
    at: number,
  ): void {
    const t: Tracked = { users: new Map(), keys: new Map(), last: Math.max(s.last, at) };
    this.tracked.set(ip, t);
    const since = at - this.options.windowMs;
    if (s.user !== undefined) this.note(ip, t, 'user', s.user, s.userAt, since);
    if (s.key !== undefined) this.note(ip, t, 'key', s.key, s.keyAt, since);
    if (userId !== undefined) this.note(ip, t, 'user', userId, at, since);
    if (apiKeyHash !== undefined) this.note(ip, t, 'key', apiKeyHash, at, since);
  }

  /** `ip` (tracked as `t`, the most recently seen) presented `id` of `kind` at `at`. */
  private note(ip: string, t: Tracked, kind: Kind, id: string, at: number, since: number): void {
    const ids = kind === 'user' ? t.users : t.keys;
    // What left the window goes first, so that it never takes the room of what is in it.
    for (const [old, oldAt] of ids) {
      if (oldAt >= since || old === id) break;
      this.forget(ip, ids, kind, old);
    }
    const last = ids.get(id);
    if (last !== undefined) {
      if (at <= last) return;
      ids.delete(id);
    } else {
      if (ids.size >= this.options.perIp) {
        const [oldest] = ids.keys();
        this.forget(ip, ids, kind, oldest!);
        this.evictedCount++;
      } else if (this.trackedCount >= this.total) {
        const [lru] = this.tracked;
        if (!lru || lru[0] === ip) {
          this.evictedCount++;
          return;
        }
        this.evictedCount += lru[1].users.size + lru[1].keys.size;
        this.drop(lru[0], lru[1]);
      }
      this.trackedCount++;
    }
    ids.set(id, at);
    const identity = kind === 'user' ? `user:${id}` : `api_key:${apiKeyPrefix(id)}`;
    const key = `${ip}\0${identity}`;
    const d = this.dirty.get(key);
    if (!d) this.dirty.set(key, { ip, identity, lastSeenMs: at });
    else if (at > d.lastSeenMs) d.lastSeenMs = at;
  }

  private forget(ip: string, ids: Map<string, number>, kind: Kind, id: string): void {
    ids.delete(id);
    this.trackedCount--;
    this.dirty.delete(`${ip}\0${kind === 'user' ? `user:${id}` : `api_key:${apiKeyPrefix(id)}`}`);
  }

  /** Stops tracking `ip`: its identities left the window, or made room. */
  private drop(ip: string, t: Tracked): void {
    this.tracked.delete(ip);
    for (const id of [...t.users.keys()]) this.forget(ip, t.users, 'user', id);
    for (const id of [...t.keys.keys()]) this.forget(ip, t.keys, 'key', id);
  }

  private evictSingle(): void {
    const [oldest] = this.singles.keys();
    if (oldest === undefined) return;
    this.singles.delete(oldest);
    this.evictedCount++;
  }
}
