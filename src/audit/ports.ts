/**
 * What the audit needs of a store. Implemented in src/store/ (PgAuditStore, PgAuditReports,
 * PgAttackStore); every method throws StoreUnavailableError when the store does not answer.
 */
import type {
  AttackPattern,
  BlockScope,
  DecisionTally,
  StatsFilter,
  StatsReport,
  ViolationFilter,
  ViolationReport,
  ViolationFields,
} from './types.js';

/**
 * `count` identical denials between firstAtMs and lastAtMs, to be written. Times are epoch ms
 * on the store's clock (as the recorder estimates it), both within one UTC hour.
 */
export interface PendingViolation extends ViolationFields {
  readonly firstAtMs: number;
  readonly lastAtMs: number;
}

/**
 * An IP seen presenting `identity` ("user:<id>" or "api_key:<hash prefix>"), last at lastSeenMs
 * (epoch ms on the store's clock).
 */
export interface Sighting {
  readonly ip: string;
  readonly identity: string;
  readonly lastSeenMs: number;
}

/**
 * Decisions of one hour (its start, epoch ms, an hour of the store's clock) for one rule or
 * command type, to be added.
 */
export interface PendingCounts extends DecisionTally {
  readonly hourMs: number;
}

/**
 * Where the audit's batches go. A write of violations or statistics carries the batch's id and
 * MUST write all of its rows or none, together with the id (one transaction), and write nothing
 * when the id was written before: a write reported failed may still have committed (the caller
 * gave up waiting, the server went on), so the same batch is sent again under the same id, and
 * then must not count twice. Resolves false when the batch had been written already.
 */
export interface AuditStore {
  appendViolations(batchId: string, rows: readonly PendingViolation[]): Promise<boolean>;
  /** Upserts: a stored sighting keeps the later of the two times (so a retry adds nothing). */
  recordSightings(rows: readonly Sighting[]): Promise<void>;
  /** Adds the counts to those stored for the same hour, kind and name. */
  addStats(batchId: string, rows: readonly PendingCounts[]): Promise<boolean>;
  /** The store's clock now, epoch ms: the audit stamps what it records by it. */
  clock(): Promise<number>;
}

/**
 * How CheckLimit keys a caller's address (limits' canonical IP keys), so that an IP filter
 * matches what was recorded.
 */
export interface IpKeys {
  /** Bits of the network an IPv6 address is keyed by (QUOTA_IPV6_PREFIX). */
  readonly ipv6PrefixBits: number;
  /** The key of one address; MUST throw ValidationError naming `field` for a bad one. */
  keyOf(address: string, field: string): string;
}

/** The reads behind GetViolations and GetStats; filters arrive validated. */
export interface AuditReportStore {
  violations(filter: ViolationFilter): Promise<ViolationReport>;
  stats(filter: StatsFilter): Promise<StatsReport>;
}

/** Thresholds of one detection run. */
export interface DetectionSettings {
  readonly windowS: number;
  /** A key denied more than this many times within the window is flagged. */
  readonly denials: number;
  /** An IP with at least this many distinct users, or as many API keys, in the window is flagged. */
  readonly identities: number;
  /**
   * Flagged keys are blocked this long; 0 flags only. A key whose block has ended is blocked
   * again when its pattern is found again in what came after the block ended.
   */
  readonly blockS: number;
}

/** What one detection run changed. */
export interface DetectionResult {
  /** Patterns flagged or refreshed. */
  readonly flagged: number;
  /** Of them, newly blocked (again, for a pattern that went on after its block). */
  readonly blocked: number;
  /** Sightings past the window deleted. */
  readonly sightingsDeleted: number;
}

/** A stored block with the time it has left, by the store's clock. */
export interface StoredBlock {
  readonly scope: string;
  readonly key: string;
  readonly remainingMs: number;
}

/**
 * Attack patterns across the cluster. `detect` runs on one replica at a time (a cluster-wide
 * job) and MUST tell every replica of a change of blocks (the change feed, payload
 * 'attack_flags'); times come from the store's clock.
 */
export interface AttackStore {
  detect(settings: DetectionSettings): Promise<DetectionResult>;
  /** Blocks still in force. */
  activeBlocks(): Promise<StoredBlock[]>;
  /**
   * Ends the blocks in force of `key` (canonical: an IP key as CheckLimit counts it, an API
   * key's hash prefix) now: their blocked_until becomes the store's clock now, which `detect`
   * then treats as the end of the block (only evidence after it blocks the key again). MUST
   * tell every replica, as `detect` does, and write nothing when no block of the key is in
   * force. Resolves the flags whose block ended, one per kind; [] when none was in force.
   */
  lift(scope: BlockScope, key: string): Promise<AttackPattern[]>;
}
