import type { DecidedCaller, RuleOutcome } from '../core/decisions.js';
import { apiKeyPrefix } from './apiKeyPrefix.js';
import type { PendingViolation } from './ports.js';
import type { ViolationSource } from './types.js';

type Row = { -readonly [K in keyof PendingViolation]: PendingViolation[K] };

/** Folded rows kept at most: one per source, rule, scope and hour, a set the admins bound. */
const MAX_FOLDS = 10_000;

const HOUR_MS = 3_600_000;

/**
 * Denials waiting to be written. Identical denials (every recorded field the same, in the same
 * UTC hour) share one row with a count and their first and last time, so a row never spans an
 * hour and the hourly summary puts each denial in its own hour. At most `capacity` such rows,
 * counting the `held` ones taken and kept for another try after a failed write: past it a
 * denial is counted in its
 * source, rule, scope and hour's folded row (key '' and no details), so the count is never
 * lost; only past MAX_FOLDS of those is one dropped, and counted. Recording is a string join and
 * a Map lookup; nothing waits.
 */
export class ViolationBuffer {
  private rows = new Map<string, Row>();
  private folds = new Map<string, Row>();
  private aggregatedCount = 0;
  private foldedCount = 0;
  private droppedCount = 0;

  constructor(
    private readonly capacity: number,
    private readonly held: () => number = () => 0,
  ) {}

  /** Rows buffered (detailed and folded). */
  get size(): number {
    return this.rows.size + this.folds.size;
  }

  /** Denials counted in a row already buffered for identical ones. */
  get aggregated(): number {
    return this.aggregatedCount;
  }

  /** Denials counted in a folded row (buffer full): their details were not kept. */
  get folded(): number {
    return this.foldedCount;
  }

  /** Denials not recorded at all: even the folded rows were full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** One denial by `rule` of a call from `caller`, at `at` (epoch ms, the store's clock). */
  record(
    source: ViolationSource,
    rule: RuleOutcome,
    caller: DecidedCaller,
    reason: string | undefined,
    at: number,
  ): void {
    // Never the API key itself: the caller holds its keyed hash, and only a prefix of that is kept.
    const key = rule.scope === 'api_key' ? apiKeyPrefix(rule.key) : rule.key;
    const prefix = caller.apiKeyHash === undefined ? null : apiKeyPrefix(caller.apiKeyHash);
    const path = caller.path === undefined ? null : storedPath(caller.path);
    const hour = Math.floor(at / HOUR_MS);
    const id = identity(
      String(hour),
      source,
      rule.rule,
      rule.scope,
      key,
      caller.ip,
      caller.userId,
      prefix,
      path,
      caller.userAgent,
      caller.host,
      reason,
    );
    const row = this.rows.get(id);
    if (row) {
      this.aggregatedCount++;
      stretch(row, at);
      return;
    }
    if (this.rows.size + this.held() < this.capacity) {
      this.rows.set(id, {
        firstAtMs: at,
        lastAtMs: at,
        count: 1,
        source,
        rule: rule.rule,
        scope: rule.scope,
        key,
        ip: caller.ip ?? null,
        userId: caller.userId ?? null,
        apiKeyPrefix: prefix,
        path,
        userAgent: caller.userAgent ?? null,
        host: caller.host ?? null,
        reason: reason ?? null,
      });
      return;
    }
    this.fold(hour, source, rule.rule, rule.scope, at);
  }

  /** Everything buffered, in one batch; the buffer starts empty. */
  take(): PendingViolation[] {
    const batch = [...this.rows.values(), ...this.folds.values()];
    this.rows = new Map();
    this.folds = new Map();
    return batch;
  }

  private fold(
    hour: number,
    source: ViolationSource,
    rule: string,
    scope: string,
    at: number,
  ): void {
    const id = `${hour}\0${source}\0${rule}\0${scope}`;
    const row = this.folds.get(id);
    if (row) {
      this.foldedCount++;
      stretch(row, at);
      return;
    }
    if (this.folds.size >= MAX_FOLDS) {
      this.droppedCount++;
      return;
    }
    this.foldedCount++;
    this.folds.set(id, {
      firstAtMs: at,
      lastAtMs: at,
      count: 1,
      source,
      rule,
      scope,
      key: '',
      ip: null,
      userId: null,
      apiKeyPrefix: null,
      path: null,
      userAgent: null,
      host: null,
      reason: null,
    });
  }
}

function stretch(row: Row, at: number): void {
  row.count++;
  if (at < row.firstAtMs) row.firstAtMs = at;
  if (at > row.lastAtMs) row.lastAtMs = at;
}

/**
 * A path as the audit keeps it: without its query string or fragment, which may carry secrets
 * (`/v1/x?api_key=…`, tokens in fragments) and make every call's path a row of its own.
 */
export function storedPath(path: string): string {
  const end = path.search(/[?#]/);
  return end < 0 ? path : path.slice(0, end);
}

/**
 * The fields that make denials identical, joined by NUL (stored text never holds one) with a
 * mark telling an absent field from an empty one.
 */
function identity(...fields: (string | null | undefined)[]): string {
  let id = '';
  for (const f of fields) id += f == null ? '\0-' : `\0+${f}`;
  return id;
}
