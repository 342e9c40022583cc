/** The identifier a rule keys on. */
export type Scope = 'ip' | 'user' | 'api_key' | 'resource';
export const SCOPES: readonly Scope[] = ['ip', 'user', 'api_key', 'resource'];

/** How a rule counts. */
export type Algorithm = 'sliding_window' | 'fixed_window' | 'token_bucket';

/** A calendar period, aligned in the configured time zone. */
export type Period = 'daily' | 'weekly' | 'monthly';

/** A rate-limit rule as stored. Exactly one of `windowMs` and `period` is set. */
export interface RateLimitRule {
  readonly name: string;
  readonly scope: Scope;
  /** Identifier value this rule applies to; "*" is the scope's default. */
  readonly match: string;
  /** Calls per window or period. */
  readonly limit: number;
  readonly windowMs: number | null;
  readonly algorithm: Algorithm;
  readonly period: Period | null;
  readonly enabled: boolean;
  readonly shadow: boolean;
  /** Scale `limit` by the caller host's throttle factor. */
  readonly loadAdaptive: boolean;
  readonly description: string;
}

/** One CheckLimit call; an identifier left undefined was not given. */
export interface CheckLimitInput {
  readonly ip?: string;
  readonly userId?: string;
  readonly apiKey?: string;
  readonly resource?: string;
  /** Units the call consumes, at least 1. */
  readonly hits: number;
  /** Makes the call idempotent: a retry with the same id returns the first answer. */
  readonly requestId?: string;
  readonly path?: string;
  readonly userAgent?: string;
  /** The caller's host, whose throttle factor applies. */
  readonly host?: string;
}

/** One limit that applied to a call. Durations in milliseconds. */
export interface LimitStatus {
  readonly rule: string;
  readonly scope: Scope;
  readonly key: string;
  readonly limit: number;
  readonly remaining: number;
  readonly windowMs: number;
  readonly resetAfterMs: number;
  readonly shadow: boolean;
  readonly exceeded: boolean;
}

/** A CheckLimit answer. A denial is a result, not an error. */
export interface CheckLimitResult {
  readonly allowed: boolean;
  readonly limits: readonly LimitStatus[];
  /** Set when denied: ms until the same call could be admitted. */
  readonly retryAfterMs: number | null;
  /** The database did not answer: this is the failure mode, not a decision. */
  readonly degraded: boolean;
  readonly throttleFactor: number;
}

/** One counter a decision checks, with the rule's parameters after load adaptation. */
export interface CounterRequest {
  readonly rule: string;
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number | null;
  readonly algorithm: Algorithm;
  readonly period: Period | null;
  readonly shadow: boolean;
}

/** What the store decided for a list of counters, in the order given. */
export interface CounterDecision {
  readonly allowed: boolean;
  /** A replay of the answer first given for the same idempotency key. */
  readonly replayed: boolean;
  readonly retryAfterMs: number;
  readonly limits: readonly {
    readonly rule: string;
    readonly key: string;
    readonly shadow: boolean;
    readonly limit: number;
    readonly remaining: number;
    readonly windowMs: number;
    readonly resetAfterMs: number;
    readonly exceeded: boolean;
  }[];
}
