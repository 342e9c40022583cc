/**
 * One holder at a time across every replica sharing the store. Implementations MUST release
 * the lock when `work` ends (or the holder's connection is lost) and MUST NOT wait for it.
 */
export interface LeaderLock {
  /** Runs `work` if no other replica holds `name`; resolves `{ ran: false }` at once if one does. */
  withLeaderLock<T>(
    name: string,
    work: () => Promise<T>,
  ): Promise<{ ran: true; value: T } | { ran: false }>;
}
