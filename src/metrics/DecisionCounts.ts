import type { DecisionEvent, DecisionListener } from '../core/decisions.js';

/** What a decision was for one rule (or for the whole call, rule "*"). */
export type DecisionResult = 'allowed' | 'denied' | 'shadow_denied' | 'degraded';

/** The rule label of the series that counts whole calls. Rule names cannot be "*". */
export const ALL_RULES = '*';

/** Decisions of one source and rule, by result. */
interface Tally {
  allowed: number;
  denied: number;
  shadow_denied: number;
  degraded: number;
}

/** One series of quota_decisions_total. */
export interface DecisionCount {
  readonly source: string;
  readonly rule: string;
  readonly result: DecisionResult;
  readonly value: number;
}

const RULE_RESULTS: readonly DecisionResult[] = ['allowed', 'denied', 'shadow_denied', 'degraded'];
/** A whole call is never shadow-denied: shadow rules never deny. */
const CALL_RESULTS: readonly DecisionResult[] = ['allowed', 'denied', 'degraded'];

/**
 * Counts answered decisions by source, rule and result, for quota_decisions_total. On the hot
 * path this is two Map lookups and an increment per rule: the counts become prom-client series
 * only when Prometheus scrapes ({@link counts}). Replays (same request_id) were counted when
 * first decided. Labels are bounded: rule names are set by admins, and a command quota's rule is
 * "command:<the matched rule's command type>".
 *
 * Per rule of a call: degraded when the call was answered in the failure mode; otherwise denied
 * when this (non-shadow) rule had no room, shadow_denied when a shadow rule had none; otherwise
 * allowed when the call was. A rule with room in a call another rule denied counts nothing: it
 * consumed nothing. Per call (rule "*"): degraded, allowed or denied.
 */
export class DecisionCounts implements DecisionListener {
  private readonly bySource = new Map<string, Map<string, Tally>>();

  /** `sources` start with zeroed "*" series, so that a scrape shows them before any call. */
  constructor(sources: readonly DecisionEvent['source'][] = ['check_limit', 'command_quota']) {
    for (const source of sources) this.tally(this.rulesOf(source), ALL_RULES);
  }

  decided(event: DecisionEvent): void {
    if (event.replayed) return;
    const rules = this.rulesOf(event.source);
    const call = this.tally(rules, ALL_RULES);
    if (event.degraded) call.degraded += 1;
    else if (event.allowed) call.allowed += 1;
    else call.denied += 1;
    for (const outcome of event.rules) {
      const t = this.tally(rules, outcome.rule);
      if (event.degraded) t.degraded += 1;
      else if (outcome.exceeded) {
        if (outcome.shadow) t.shadow_denied += 1;
        else t.denied += 1;
      } else if (event.allowed) t.allowed += 1;
    }
  }

  /** Every series, zeros included (a rule once seen keeps all its results). */
  *counts(): Iterable<DecisionCount> {
    for (const [source, rules] of this.bySource) {
      for (const [rule, tally] of rules) {
        for (const result of rule === ALL_RULES ? CALL_RESULTS : RULE_RESULTS) {
          yield { source, rule, result, value: tally[result] };
        }
      }
    }
  }

  private rulesOf(source: string): Map<string, Tally> {
    let rules = this.bySource.get(source);
    if (!rules) {
      rules = new Map();
      this.bySource.set(source, rules);
    }
    return rules;
  }

  private tally(rules: Map<string, Tally>, rule: string): Tally {
    let t = rules.get(rule);
    if (!t) {
      t = { allowed: 0, denied: 0, shadow_denied: 0, degraded: 0 };
      rules.set(rule, t);
    }
    return t;
  }
}
