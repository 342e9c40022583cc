import type { Logger } from '../log.js';
import { coalesced } from './coalesced.js';
import { followChanges } from './followChanges.js';
import type { ChangeFeed } from './ports.js';

/**
 * A replica's copy of something stored (rules, tiers), kept current by the change feed: reloaded
 * when the feed names `payload`, after it reconnects, and every `refreshMs` as a safety net. A
 * failed reload keeps the last good copy and is tried again in a second, so that a change
 * announced while the store failed does not wait for the safety poll.
 */
export class FollowedCache<T> {
  private current: T | undefined;
  private retry: NodeJS.Timeout | undefined;
  private unfollow: () => void = () => undefined;

  constructor(
    private readonly what: string,
    private readonly load: () => Promise<T>,
    private readonly logger: Logger,
    private readonly refreshMs = 30_000,
  ) {}

  /** Loads once (a failure is retried in the background) and follows `feed`. */
  async start(feed: ChangeFeed, payload: string): Promise<void> {
    this.unfollow = await followChanges(feed, payload, () => this.reload(), this.refreshMs);
  }

  stop(): void {
    this.unfollow();
    clearTimeout(this.retry);
  }

  /** Whether a copy has been loaded at least once. */
  get ready(): boolean {
    return this.current !== undefined;
  }

  /** The last good copy; undefined before the first load. */
  get value(): T | undefined {
    return this.current;
  }

  /** Reloads now; concurrent calls coalesce into at most one more load. */
  readonly reload: () => Promise<void> = coalesced(async () => {
    try {
      this.current = await this.load();
    } catch (err) {
      this.logger.warn(
        { err, what: this.what },
        'reload failed; keeping the last copy, retrying in 1 s',
      );
      clearTimeout(this.retry);
      this.retry = setTimeout(() => void this.reload(), 1000);
      this.retry.unref();
    }
  });
}
