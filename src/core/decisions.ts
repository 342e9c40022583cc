/**
 * What the decision capabilities tell the rest of the service about each answer: the audit
 * (violations, statistics, attack patterns) and the metrics listen; the block list is asked
 * before a decision. Shapes only, so that limits and quotas need not know who listens.
 */

/** One rule's part in a decision. */
export interface RuleOutcome {
  /**
   * A rate-limit rule's name; for a command quota "command:<command type of the rule>" (the
   * matched rule's type, or "*": a bounded set, unlike callers' command types).
   */
  readonly rule: string;
  /** "ip", "user", "api_key", "resource" or "command". */
  readonly scope: string;
  /** The counter key: a canonical IP, an API key's keyed hash, "<user>/<command type>". */
  readonly key: string;
  readonly shadow: boolean;
  /** Whether this rule had no room: it denied the call, or (shadow) would have. */
  readonly exceeded: boolean;
}

/** The caller as a decision saw it: IPs canonical, API keys only as their keyed hash. */
export interface DecidedCaller {
  readonly ip?: string;
  readonly userId?: string;
  readonly apiKeyHash?: string;
  readonly resource?: string;
  readonly path?: string;
  readonly userAgent?: string;
  readonly host?: string;
  /** For command quotas: the command type the caller asked for. */
  readonly commandType?: string;
}

/** The rule name a denial for an attack block carries; no admin rule may take it. */
export const ATTACK_BLOCK_RULE = 'attack-block';

/** One answered decision. */
export interface DecisionEvent {
  readonly source: 'check_limit' | 'command_quota';
  readonly allowed: boolean;
  /** Answered in the failure mode: the database did not answer. */
  readonly degraded: boolean;
  /** A replay of an earlier answer (same request_id): counted once, when first decided. */
  readonly replayed: boolean;
  readonly rules: readonly RuleOutcome[];
  readonly caller: DecidedCaller;
  /** Why a command was denied ("QUOTA_EXCEEDED: daily", "SYSTEM_OVERLOADED"). */
  readonly reason?: string;
  /** Wall-clock ms of the answer. */
  readonly at: number;
}

/** Told of every answered decision, on the hot path: MUST NOT block or throw. */
export interface DecisionListener {
  decided(event: DecisionEvent): void;
}

/** A key every replica denies for now, and for how much longer. */
export interface ActiveBlock {
  readonly scope: string;
  readonly key: string;
  readonly remainingMs: number;
}

/** Keys denied for an attack; asked before every CheckLimit decision, so answers from memory. */
export interface BlockSource {
  /** The block on any of the caller's keys (canonical IP, user, API key hash), or null. */
  blockFor(caller: DecidedCaller): ActiveBlock | null;
}

/** Listens to nothing and blocks nothing: the audit switched off, and unit tests. */
export const NO_AUDIT: DecisionListener & BlockSource = {
  decided: () => undefined,
  blockFor: () => null,
};

/** One listener telling each of `listeners` in turn. */
export function fanOut(...listeners: readonly DecisionListener[]): DecisionListener {
  return {
    decided(event) {
      for (const l of listeners) l.decided(event);
    },
  };
}
