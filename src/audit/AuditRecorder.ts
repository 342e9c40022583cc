import { ATTACK_BLOCK_RULE, type DecisionEvent, type DecisionListener } from '../core/decisions.js';
import { BatchQueue } from './BatchQueue.js';
import { IdentityTracker } from './IdentityTracker.js';
import type { AuditStore, PendingCounts, PendingViolation } from './ports.js';
import { StatsCounter } from './StatsCounter.js';
import { ViolationBuffer } from './ViolationBuffer.js';

/** Rows per write: each write is one transaction, committed or not as a whole. */
const CHUNK = 5000;
/** How often the store's clock is read again, in ms (this host's clock may be stepped). */
const CLOCK_SYNC_MS = 10_000;
/** A clock reading that took longer than this says too little about when it was taken, in ms. */
const CLOCK_SYNC_MAX_RTT_MS = 1000;
/**
 * How far from the store's clock a time the recorder stamps may be, in ms, once a reading was
 * kept and while this host's clock is not stepped: the store read its clock somewhere within
 * the reading's round trip, and the offset takes the middle of it.
 */
export const MAX_STAMP_ERROR_MS = CLOCK_SYNC_MAX_RTT_MS / 2;

export interface AuditRecorderOptions {
  /** Record violations and identity sightings; statistics are counted either way. */
  readonly enabled: boolean;
  /**
   * Distinct violation rows held between flushes, those kept from a failed write included;
   * past it denials are counted under their rule without details.
   */
  readonly bufferSize: number;
  /** Attack detection window, in ms: how long an identity sighting counts. */
  readonly windowMs: number;
  /** Identities an IP needs to be flagged: the tracker keeps at least this many per IP. */
  readonly attackIdentities: number;
  /** Distinct names per kind and hour in the statistics. @default 10_000 */
  readonly maxStatNames?: number;
  /** Wall-clock ms, the clock decisions are stamped with. @default Date.now */
  readonly now?: () => number;
  /** Ids of the batches written. @default crypto.randomUUID */
  readonly newBatchId?: () => string;
}

/**
 * The audit's decision listener: told of every answer on the hot path, it only counts and
 * buffers in memory (Map lookups, no waiting); flushes write the buffers in batches. Replays
 * count nothing.
 *
 * Times are the store's: every replica stamps what it records with its estimate of the
 * database clock (this host's clock plus the offset last measured), so that violations,
 * statistics hours and sightings agree with the database clock that detection and reports use.
 *
 * A failed write of violations or statistics keeps its chunks as they were, under their batch
 * ids, and sends them first at the next flush; a chunk that committed after all is skipped by
 * its id, so nothing counts twice. New denials keep going to the live buffer meanwhile.
 */
export class AuditRecorder implements DecisionListener {
  readonly violations: ViolationBuffer;
  readonly stats: StatsCounter;
  readonly identities: IdentityTracker;
  /** Violation chunks taken and not confirmed written. */
  readonly pendingViolations: BatchQueue<PendingViolation>;
  /** Statistics chunks taken and not confirmed written. */
  readonly pendingStats: BatchQueue<PendingCounts>;
  private readonly now: () => number;
  /** The store's clock minus this host's, in ms, as last measured. */
  private offsetMs = 0;
  private syncedAt = -Infinity;

  constructor(
    private readonly store: AuditStore,
    private readonly options: AuditRecorderOptions,
  ) {
    this.pendingViolations = new BatchQueue(CHUNK, options.newBatchId);
    this.pendingStats = new BatchQueue(CHUNK, options.newBatchId);
    // Rows kept from a failed write count against the buffer: an outage does not double it.
    this.violations = new ViolationBuffer(options.bufferSize, () => this.pendingViolations.kept);
    this.stats = new StatsCounter(options.maxStatNames);
    this.identities = new IdentityTracker({
      windowMs: options.windowMs,
      perIp: Math.max(options.attackIdentities, 100),
    });
    this.now = options.now ?? Date.now;
  }

  /** The store's clock minus this host's, in ms, as last measured. */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }

  decided(event: DecisionEvent): void {
    if (event.replayed) return;
    const at = event.at + this.offsetMs;
    this.stats.count(event, at);
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
        this.identities.seen(caller.ip, caller.userId, caller.apiKeyHash, at);
      if (event.allowed || event.degraded) return;
      for (const r of event.rules) {
        if (r.exceeded && !r.shadow) this.violations.record(event.source, r, caller, undefined, at);
      }
      return;
    }
    // A command denied for its quota. Not a host's load (SYSTEM_OVERLOADED): that is no doing
    // of the caller's, and one loaded host would make every user on it look like an attacker.
    // Nor the failure mode's answer, which is about the database, not the caller.
    const rule = event.rules[0];
    if (!event.allowed && !event.degraded && event.reason !== 'SYSTEM_OVERLOADED' && rule)
      this.violations.record(event.source, rule, caller, event.reason, at);
  }

  /**
   * Reads the store's clock and keeps its offset from this host's; a reading that took too long
   * or failed keeps the last offset (a failing store fails the write that follows anyway).
   */
  async syncClock(): Promise<void> {
    const before = this.now();
    try {
      const storeNow = await this.store.clock();
      const after = this.now();
      if (after - before > CLOCK_SYNC_MAX_RTT_MS) return;
      this.offsetMs = storeNow - (before + after) / 2;
      this.syncedAt = after;
    } catch {
      // Measured again at the next flush.
    }
  }

  /** Writes the chunks kept from a failed flush, the buffered violations, then the sightings. */
  async flushViolations(): Promise<void> {
    await this.syncIfDue();
    await this.pendingViolations.flush(
      () => this.violations.take(),
      (id, rows) => this.store.appendViolations(id, rows),
    );
    const sightings = this.identities.pending(this.now() + this.offsetMs);
    if (sightings.rows.length === 0) return;
    for (let i = 0; i < sightings.rows.length; i += CHUNK)
      await this.store.recordSightings(sightings.rows.slice(i, i + CHUNK));
    this.identities.written(sightings);
  }

  /** Adds the counted statistics to the stored ones (chunks kept from a failed flush first). */
  async flushStats(): Promise<void> {
    await this.syncIfDue();
    await this.pendingStats.flush(
      () => sortedCounts(this.stats.take()),
      (id, rows) => this.store.addStats(id, rows),
    );
  }

  private async syncIfDue(): Promise<void> {
    // Either way: a host clock stepped back must not put the next reading off.
    if (Math.abs(this.now() - this.syncedAt) >= CLOCK_SYNC_MS) await this.syncClock();
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
