import { createHash } from 'node:crypto';
import { failureModeAnswer, type FailureMode } from '../core/failureMode.js';
import { StoreUnavailableError } from '../errors.js';
import type { ThrottleSource } from '../core/ports.js';
import type { CallerKeys } from './CallerKeys.js';
import type { LimitStore } from './ports.js';
import type { RuleCache } from './RuleCache.js';
import type { CheckLimitInput, CheckLimitResult, CounterRequest, LimitStatus } from './types.js';
import { validateCheckLimit } from './validateCheckLimit.js';

export interface LimitServiceOptions {
  readonly failureMode: FailureMode;
  readonly timezone: string;
  /** Counter keys of the caller's IP address and API key. */
  readonly keys: CallerKeys;
}

/** CheckLimit: matches the cached rules and asks the store for one atomic decision. */
export class LimitService {
  constructor(
    private readonly rules: RuleCache,
    private readonly store: LimitStore,
    private readonly throttle: ThrottleSource,
    private readonly options: LimitServiceOptions,
  ) {}

  async check(request: CheckLimitInput): Promise<CheckLimitResult> {
    const input = validateCheckLimit(request);
    // Matched, counted and stored by these keys: the IP canonical, the API key hashed.
    const keyed = this.options.keys.forCall(input);
    const throttleFactor = this.throttle.factorFor(input.host);
    // Without rules (or the secret API keys are hashed under) there is nothing to decide by:
    // that is not "no rule applies".
    if (!this.rules.ready || keyed === null) return this.failureMode(throttleFactor);
    // The store orders counters for locking; this order is the response's.
    const matched = this.rules.match(keyed);
    if (matched.length === 0) {
      return { allowed: true, limits: [], retryAfterMs: null, degraded: false, throttleFactor };
    }
    const counters: CounterRequest[] = matched.map(({ rule, key }) => ({
      rule: rule.name,
      key,
      // A load-adaptive rule admits floor(limit x factor) while its host is loaded.
      limit: rule.loadAdaptive ? Math.floor(rule.limit * throttleFactor) : rule.limit,
      windowMs: rule.windowMs,
      algorithm: rule.algorithm,
      period: rule.period,
      shadow: rule.shadow,
    }));
    let decision;
    try {
      decision = await this.store.check(
        counters,
        input.hits,
        keyed.requestId ? idempotencyKey(keyed) : null,
        this.options.timezone,
      );
    } catch (err) {
      // A database that does not answer (timeout, lost connection, a lock held past the
      // deadline) gets the failure mode. Nothing else does: the service's own backlog is shed
      // (OverloadedError, RESOURCE_EXHAUSTED), a value the store refused is this caller's bad
      // input, and anything unexpected fails this call alone (INTERNAL, logged at the boundary).
      if (err instanceof StoreUnavailableError) return this.failureMode(throttleFactor);
      throw err;
    }
    // A replayed answer may name rules changed since; report the ones still known.
    const scopes = new Map(matched.map((m) => [m.rule.name, m.rule.scope]));
    const limits: LimitStatus[] = [];
    for (const l of decision.limits) {
      const scope = scopes.get(l.rule);
      if (!scope) continue;
      // The caller sees the API key it sent, never the hash that was stored.
      const key = scope === 'api_key' && l.key === keyed.apiKey ? input.apiKey! : l.key;
      limits.push({ ...l, scope, key });
    }
    return {
      allowed: decision.allowed,
      limits,
      retryAfterMs: decision.allowed ? null : Math.max(1, decision.retryAfterMs),
      degraded: false,
      throttleFactor,
    };
  }

  private failureMode(throttleFactor: number): CheckLimitResult {
    return { ...failureModeAnswer(this.options.failureMode), limits: [], throttleFactor };
  }
}

/**
 * The stored key of a request_id: bound to what the call asks for, so that a request_id reused
 * for another call (another identifier, more hits) is a new decision, not a replay of the first.
 * Made of the counter keys: no raw API key goes into it.
 */
function idempotencyKey(input: CheckLimitInput): string {
  const what = createHash('sha256')
    .update([input.ip, input.userId, input.apiKey, input.resource, input.hits].join('\u0000'))
    .digest('base64url')
    .slice(0, 22);
  return `check_limit:${input.requestId}:${what}`;
}
