import { apiKeyPrefix } from './apiKeyPrefix.js';
import type { Sighting } from './ports.js';

interface Seen {
  /** User id → last seen (wall-clock ms). */
  readonly users: Map<string, number>;
  /** API key hash → last seen; written as the hash's prefix. */
  readonly keys: Map<string, number>;
  /** Sightings seen at or after this time are not written yet. */
  writtenUpTo: number;
}

/** Sightings to write, and what to mark as written once they are. */
export interface SightingBatch {
  readonly rows: readonly Sighting[];
  readonly ips: readonly Seen[];
  readonly at: number;
}

/** Limits of an {@link IdentityTracker}. */
export interface IdentityTrackerOptions {
  /** How long an identity counts after it was seen, in ms. */
  readonly windowMs: number;
  /** Identities kept per IP: at least the detection threshold, else it could never be met. */
  readonly perIp: number;
  /** Identities kept in all. @default 100_000 */
  readonly total?: number;
}

/**
 * Which identities (users, API keys) each IP presented within the window, as this replica saw
 * them. Only IPs seen with more than one identity are written, so one user behind one address
 * costs the database nothing; the database unions what every replica saw. Bounded: past
 * `perIp` identities an IP's further ones are not kept (the IP already has enough to be
 * flagged), and past `total` new ones are not kept until old ones leave the window; both are
 * counted in `skipped`.
 */
export class IdentityTracker {
  private readonly ips = new Map<string, Seen>();
  private tracked = 0;
  private skippedCount = 0;
  private readonly total: number;

  constructor(private readonly options: IdentityTrackerOptions) {
    this.total = options.total ?? 100_000;
  }

  /** Identities kept, over every IP. */
  get size(): number {
    return this.tracked;
  }

  /** Sightings not kept: an IP or this replica had as many as it keeps. */
  get skipped(): number {
    return this.skippedCount;
  }

  /** A call from `ip` carrying `userId` and/or the API key hash `apiKeyHash`, at `at` (ms). */
  seen(ip: string, userId: string | undefined, apiKeyHash: string | undefined, at: number): void {
    let s = this.ips.get(ip);
    if (!s) {
      if (this.tracked >= this.total) {
        this.skippedCount++;
        return;
      }
      s = { users: new Map(), keys: new Map(), writtenUpTo: -Infinity };
      this.ips.set(ip, s);
    }
    if (userId !== undefined) this.note(s, s.users, userId, at);
    if (apiKeyHash !== undefined) this.note(s, s.keys, apiKeyHash, at);
  }

  /**
   * Forgets what left the window by `now`; returns the sightings of IPs with more than one
   * identity that are not written yet (all of an IP's when it first has a second one).
   */
  pending(now: number): SightingBatch {
    const since = now - this.options.windowMs;
    const rows: Sighting[] = [];
    const ips: Seen[] = [];
    for (const [ip, s] of this.ips) {
      this.forget(s.users, since);
      this.forget(s.keys, since);
      const n = s.users.size + s.keys.size;
      if (n === 0) {
        this.ips.delete(ip);
        continue;
      }
      if (n < 2) continue;
      const before = rows.length;
      for (const [user, at] of s.users) {
        if (at >= s.writtenUpTo) rows.push({ ip, identity: `user:${user}`, lastSeenMs: at });
      }
      for (const [hash, at] of s.keys) {
        if (at >= s.writtenUpTo)
          rows.push({ ip, identity: `api_key:${apiKeyPrefix(hash)}`, lastSeenMs: at });
      }
      if (rows.length > before) ips.push(s);
    }
    return { rows, ips, at: now };
  }

  /** Marks `batch` written: its sightings are not written again unless seen again. */
  written(batch: SightingBatch): void {
    for (const s of batch.ips) s.writtenUpTo = batch.at;
  }

  private note(s: Seen, ids: Map<string, number>, id: string, at: number): void {
    const last = ids.get(id);
    if (last === undefined) {
      if (s.users.size + s.keys.size >= this.options.perIp || this.tracked >= this.total) {
        this.skippedCount++;
        return;
      }
      this.tracked++;
    } else if (last >= at) return;
    ids.set(id, at);
  }

  private forget(ids: Map<string, number>, since: number): void {
    for (const [id, at] of ids) {
      if (at < since) {
        ids.delete(id);
        this.tracked--;
      }
    }
  }
}
