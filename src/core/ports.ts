/**
 * Ports every capability shares. Implementations live in src/store/ (the change feed) and in
 * src/load/ (the throttle source); capabilities depend only on these interfaces.
 */

/**
 * Notifications that a replica's caches are stale; `payload` names what changed. MUST call
 * `onReconnect` listeners after a lost connection is back, since changes may have been missed.
 */
export interface ChangeFeed {
  onChange(listener: (payload: string) => void): void;
  /** Called after the feed reconnects: changes may have been missed. */
  onReconnect(listener: () => void): void;
}

/** The throttle factor of a host in [0, 1]; 1 for an unknown or empty host. */
export interface ThrottleSource {
  factorFor(host: string | undefined): number;
}
