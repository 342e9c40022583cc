import type { DecisionEvent } from '../core/decisions.js';
import type { PendingCounts } from './ports.js';

interface Counts {
  allowed: number;
  denied: number;
  shadowDenied: number;
  degraded: number;
}

interface Hour {
  readonly rule: Map<string, Counts>;
  readonly command: Map<string, Counts>;
}

const HOUR_MS = 3_600_000;
/** The name counted for every call of its kind. */
export const ALL = '*';
/** The name that names past the bound are counted under. */
export const OTHER = '(other)';

/**
 * Exact decision counts per hour, per rate-limit rule and per command type, kept in memory
 * between flushes. Counting is a few Map lookups and increments. Command types are the callers'
 * own words: past `maxNames` names of one kind in one hour, further names are counted under
 * OTHER, so that a caller inventing names cannot grow memory without bound.
 *
 * What a call counts (a replay counts nothing: it was counted when first decided):
 * - a call answered in the failure mode counts `degraded` only, under '*' and each of its rules;
 * - otherwise '*' counts it `allowed` or `denied` (and `shadowDenied` when a shadow rule would
 *   have denied it); a rule counts `denied` when it denied the call, a shadow rule
 *   `shadowDenied` when it would have; an admitted call counts `allowed` under every rule that
 *   applied (a shadow rule's `shadowDenied` calls among them).
 */
export class StatsCounter {
  private hours = new Map<number, Hour>();
  private foldedCount = 0;

  constructor(private readonly maxNames = 10_000) {}

  /** Rows buffered: hours x kinds x names. */
  get size(): number {
    let n = 0;
    for (const h of this.hours.values()) n += h.rule.size + h.command.size;
    return n;
  }

  /** Decisions counted under OTHER because their hour had too many names. */
  get folded(): number {
    return this.foldedCount;
  }

  /** Counts `event` in the hour of `at` (epoch ms, the store's clock; the event's own by default). */
  count(event: DecisionEvent, at = event.at): void {
    if (event.replayed) return;
    const hour = this.hour(at - (at % HOUR_MS));
    if (event.source === 'command_quota') {
      const all = this.counts(hour.command, ALL);
      const own = this.counts(hour.command, event.caller.commandType ?? '');
      if (event.degraded) {
        all.degraded++;
        own.degraded++;
      } else if (event.allowed) {
        all.allowed++;
        own.allowed++;
      } else {
        all.denied++;
        own.denied++;
      }
      return;
    }
    const all = this.counts(hour.rule, ALL);
    if (event.degraded) {
      all.degraded++;
      for (const r of event.rules) this.counts(hour.rule, r.rule).degraded++;
      return;
    }
    if (event.allowed) all.allowed++;
    else all.denied++;
    let shadowDenied = false;
    for (const r of event.rules) {
      const c = this.counts(hour.rule, r.rule);
      if (r.exceeded) {
        if (r.shadow) {
          c.shadowDenied++;
          shadowDenied = true;
        } else c.denied++;
      }
      if (event.allowed) c.allowed++;
    }
    if (shadowDenied) all.shadowDenied++;
  }

  /** Everything counted, as rows; counting starts afresh. */
  take(): PendingCounts[] {
    const rows: PendingCounts[] = [];
    for (const [hourMs, hour] of this.hours) {
      for (const kind of ['rule', 'command'] as const) {
        for (const [name, c] of hour[kind]) rows.push({ hourMs, kind, name, ...c });
      }
    }
    this.hours = new Map();
    return rows;
  }

  private hour(hourMs: number): Hour {
    let hour = this.hours.get(hourMs);
    if (!hour) {
      hour = { rule: new Map(), command: new Map() };
      this.hours.set(hourMs, hour);
    }
    return hour;
  }

  private counts(names: Map<string, Counts>, name: string): Counts {
    let c = names.get(name);
    if (c) return c;
    if (names.size >= this.maxNames && name !== ALL) {
      this.foldedCount++;
      name = OTHER;
      c = names.get(name);
      if (c) return c;
    }
    c = { allowed: 0, denied: 0, shadowDenied: 0, degraded: 0 };
    names.set(name, c);
    return c;
  }
}
