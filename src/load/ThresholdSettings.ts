import type { ChangeFeed } from '../core/ports.js';
import type { Logger } from '../log.js';
import type { ThrottleStore } from './ports.js';
import { validateThresholds } from './ThrottlePolicy.js';
import type { Thresholds } from './types.js';
import { coalesced } from '../core/coalesced.js';
import { followChanges } from '../core/followChanges.js';

/**
 * The throttle thresholds in force on this replica: the env defaults until an operator stores
 * others. Reloaded when the change feed says they changed (so every replica applies a change
 * within a second), after the feed reconnects, and every `refreshMs` as a safety net.
 */
export class ThresholdSettings {
  private value: Thresholds;
  private unfollow: () => void = () => undefined;

  constructor(
    private readonly store: ThrottleStore,
    private readonly defaults: Thresholds,
    private readonly logger: Logger,
    private readonly refreshMs = 30_000,
  ) {
    this.value = defaults;
  }

  get current(): Thresholds {
    return this.value;
  }

  async start(feed: ChangeFeed): Promise<void> {
    this.unfollow = await followChanges(
      feed,
      'throttle_thresholds',
      () => this.reload(),
      this.refreshMs,
    );
  }

  stop(): void {
    this.unfollow();
  }

  /** Validates (ValidationError names e.g. thresholds.moderate), stores and applies. */
  async set(thresholds: Thresholds): Promise<Thresholds> {
    const valid = validateThresholds(thresholds);
    await this.store.setThresholds(valid);
    this.value = valid;
    // Runs after any reload that began before the write, so an older read cannot land last.
    await this.reload();
    return valid;
  }

  /** Reloads now; concurrent calls coalesce, so an older read never lands after a newer one. */
  readonly reload: () => Promise<void> = coalesced(async () => {
    try {
      this.value = (await this.store.getThresholds()) ?? this.defaults;
    } catch (err) {
      this.logger.warn({ err }, 'throttle threshold reload failed; keeping the last ones');
    }
  });
}
