import { ATTACK_BLOCK_RULE, type DecisionEvent, type DecisionListener } from '../core/decisions.js';
import { IdentityTracker } from './IdentityTracker.js';
import type { AuditStore, PendingCounts, PendingViolation } from './ports.js';
import { StatsCounter } from './StatsCounter.js';
import { ViolationBuffer } from './ViolationBuffer.js';

/** Rows per write: each write is one statement, committed or not as a whole. */
const CHUNK = 5000;

export interface AuditRecorderOptions {
  /** Record violations and identity sightings; statistics are counted either way. */
  readonly enabled: boolean;
  /** Distinct violation rows buffered between flushes. */
  readonly bufferSize: number;
  /** Attack detection window, in ms: how long an identity sighting counts. */
  readonly windowMs: number;
  /** Identities an IP needs to be flagged: the tracker keeps at least this many per IP. */
  readonly attackIdentities: number;
  /** Distinct names per kind and hour in the statistics. @default 10_000 */
  readonly maxStatNames?: number;
  /** Wall-clock ms. @default Date.now */
  readonly now?: () => number;
}

/**
 * The audit's decision listener: told of every answer on the hot path, it only counts and
 * buffers in memory (Map lookups, no waiting); flushes write the buffers in batches. Replays
 * count nothing. A failed write keeps its rows, merged with what came meanwhile, for the next
 * flush.
 */
export class AuditRecorder implements DecisionListener {
  readonly violations: ViolationBuffer;
  readonly stats: StatsCounter;
  readonly identities: IdentityTracker;
  private readonly now: () => number;

  constructor(
    private readonly store: AuditStore,
    private readonly options: AuditRecorderOptions,
  ) {
    this.violations = new ViolationBuffer(options.bufferSize);
    this.stats = new StatsCounter(options.maxStatNames);
    this.identities = new IdentityTracker({
      windowMs: options.windowMs,
      perIp: Math.max(options.attackIdentities, 100),
    });
    this.now = options.now ?? Date.now;
  }

  decided(event: DecisionEvent): void {
    if (event.replayed) return;
    this.stats.count(event);
    if (!this.options.enabled) return;
    const { caller } = event;
    if (event.source === 'check_limit') {
      // Every call counts towards an identity spread, admitted or not; but not one an attack
      // block denied: those identities were not asked about, and would keep the block's
      // pattern alive.
      if (
        caller.ip !== undefined &&
        (caller.userId !== undefined || caller.apiKeyHash !== undefined) &&
        !event.rules.some((r) => r.rule === ATTACK_BLOCK_RULE)
      )
        this.identities.seen(caller.ip, caller.userId, caller.apiKeyHash, event.at);
      if (event.allowed || event.degraded) return;
      for (const r of event.rules) {
        if (r.exceeded && !r.shadow)
          this.violations.record(event.source, r, caller, undefined, event.at);
      }
      return;
    }
    // A command denied for its quota. Not a host's load (SYSTEM_OVERLOADED): that is no doing
    // of the caller's, and one loaded host would make every user on it look like an attacker.
    // Nor the failure mode's answer, which is about the database, not the caller.
    const rule = event.rules[0];
    if (!event.allowed && !event.degraded && event.reason !== 'SYSTEM_OVERLOADED' && rule)
      this.violations.record(event.source, rule, caller, event.reason, event.at);
  }

  /** Writes the buffered violations, then the identity sightings not written yet. */
  async flushViolations(): Promise<void> {
    await writeChunks(
      this.violations.take(),
      (rows) => this.store.appendViolations(rows),
      (rest) => this.violations.restore(rest),
    );
    const sightings = this.identities.pending(this.now());
    if (sightings.rows.length === 0) return;
    for (let i = 0; i < sightings.rows.length; i += CHUNK)
      await this.store.recordSightings(sightings.rows.slice(i, i + CHUNK));
    this.identities.written(sightings);
  }

  /** Adds the counted statistics to the stored ones. */
  async flushStats(): Promise<void> {
    await writeChunks(
      sortedCounts(this.stats.take()),
      (rows) => this.store.addStats(rows),
      (rest) => this.stats.restore(rest),
    );
  }
}

/**
 * Writes `rows` a chunk at a time; when a chunk fails, it and the chunks after it go back
 * through `restore` (the ones before it are written) and the error is thrown.
 */
async function writeChunks<T extends PendingViolation | PendingCounts>(
  rows: readonly T[],
  write: (chunk: readonly T[]) => Promise<void>,
  restore: (rest: readonly T[]) => void,
): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    try {
      await write(rows.slice(i, i + CHUNK));
    } catch (err) {
      restore(rows.slice(i));
      throw err;
    }
  }
}

/** In key order: replicas adding to the same rows lock them in one order, never in a cycle. */
function sortedCounts(rows: PendingCounts[]): PendingCounts[] {
  return rows.sort(
    (a, b) =>
      a.hourMs - b.hourMs ||
      (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}
