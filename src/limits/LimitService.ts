import { createHash } from 'node:crypto';
import {
  ATTACK_BLOCK_RULE,
  NO_AUDIT,
  type ActiveBlock,
  type BlockSource,
  type DecidedCaller,
  type DecisionListener,
  type RuleOutcome,
} from '../core/decisions.js';
import { failureModeAnswer, type FailureMode } from '../core/failureMode.js';
import { OverloadedError, StoreUnavailableError, ValidationError } from '../errors.js';
import type { ThrottleSource } from '../core/ports.js';
import type { CallerKeys } from './CallerKeys.js';
import type { LimitStore } from './ports.js';
import type { RuleCache } from './RuleCache.js';
import type {
  CheckLimitInput,
  CheckLimitResult,
  CounterDecision,
  CounterRequest,
  LimitStatus,
  Scope,
} from './types.js';
import { validateCheckLimit } from './validateCheckLimit.js';

export interface LimitServiceOptions {
  readonly failureMode: FailureMode;
  readonly timezone: string;
  /** Counter keys of the caller's IP address and API key. */
  readonly keys: CallerKeys;
  /** Told of every answer (audit, statistics, metrics). @default none */
  readonly listener?: DecisionListener;
  /** Keys blocked for an attack: denied before any rule is asked. @default none */
  readonly blocks?: BlockSource;
}

/** Checks of one CheckLimits call at most: its answer stays well under the message size bound. */
export const MAX_CHECKS = 1000;

/**
 * One check of a CheckLimits call; a ValidationError stands for a check that could not be read
 * (invalid UTF-8...): it is that check's error.
 */
export type CheckItem = CheckLimitInput | ValidationError;

/** CheckLimit: matches the cached rules and asks the store for one atomic decision. */
export class LimitService {
  private readonly listener: DecisionListener;
  private readonly blocks: BlockSource;

  constructor(
    private readonly rules: RuleCache,
    private readonly store: LimitStore,
    private readonly throttle: ThrottleSource,
    private readonly options: LimitServiceOptions,
  ) {
    this.listener = options.listener ?? NO_AUDIT;
    this.blocks = options.blocks ?? NO_AUDIT;
  }

  async check(request: CheckLimitInput): Promise<CheckLimitResult> {
    const input = validateCheckLimit(request);
    // Matched, counted and stored by these keys: the IP canonical, the API key hashed.
    const keyed = this.options.keys.forCall(input);
    const caller: DecidedCaller = {
      ip: keyed?.ip,
      userId: input.userId,
      apiKeyHash: keyed?.apiKey,
      resource: input.resource,
      path: input.path,
      userAgent: input.userAgent,
      host: input.host,
    };
    const result = await this.decide(input, keyed, caller);
    this.listener.decided({
      source: 'check_limit',
      allowed: result.answer.allowed,
      degraded: result.answer.degraded,
      replayed: result.replayed,
      rules: result.outcomes,
      caller,
      at: Date.now(),
    });
    return result.answer;
  }

  /**
   * CheckLimits: each check decided on its own exactly as check() decides it, all submitted to
   * the store together and in order (checks on one counter count in the order given). A check
   * that fails (bad input, shed) is that check's rejection; the others are decided. Throws
   * ValidationError naming `checks` for none or more than MAX_CHECKS.
   */
  checkAll(items: readonly CheckItem[]): Promise<PromiseSettledResult<CheckLimitResult>[]> {
    if (items.length === 0 || items.length > MAX_CHECKS) {
      throw new ValidationError(
        'checks',
        `must hold 1 to ${MAX_CHECKS} checks, got ${items.length}`,
      );
    }
    const answers = this.store.together(() =>
      items.map((item) =>
        item instanceof ValidationError ? Promise.reject(item) : this.check(item),
      ),
    );
    return Promise.allSettled(answers);
  }

  private async decide(
    input: CheckLimitInput,
    keyed: CheckLimitInput | null,
    caller: DecidedCaller,
  ): Promise<Decided> {
    const throttleFactor = this.throttle.factorFor(input.host);
    // Without rules (or the secret API keys are hashed under) there is nothing to decide by:
    // that is not "no rule applies".
    if (!this.rules.ready || keyed === null) return this.failureMode(throttleFactor, []);
    // The store orders counters for locking; this order is the response's.
    const matched = this.rules.match(keyed);
    const block = this.blocks.blockFor(caller);
    if (block) {
      // A retry of a call decided before the block gets the first answer, as every retry does.
      const first = keyed.requestId ? await this.replay(idempotencyKey(keyed)) : null;
      if (!first) return blocked(block, input, keyed, throttleFactor);
      return answerFrom(first, matched, input, keyed, throttleFactor);
    }
    if (matched.length === 0) {
      return {
        answer: { allowed: true, limits: [], retryAfterMs: null, degraded: false, throttleFactor },
        replayed: false,
        outcomes: [],
      };
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
      if (err instanceof StoreUnavailableError) {
        const outcomes = matched.map(({ rule, key }) => ({
          rule: rule.name,
          scope: rule.scope,
          key,
          shadow: rule.shadow,
          exceeded: false,
        }));
        return this.failureMode(throttleFactor, outcomes);
      }
      throw err;
    }
    return answerFrom(decision, matched, input, keyed, throttleFactor);
  }

  /**
   * The stored first answer of a request; null when there is none, or when it cannot be read in
   * time (the store away, or too many lookups waiting): the block answers then.
   */
  private async replay(key: string): Promise<CounterDecision | null> {
    try {
      return await this.store.replay(key);
    } catch (err) {
      if (err instanceof StoreUnavailableError || err instanceof OverloadedError) return null;
      throw err;
    }
  }

  private failureMode(throttleFactor: number, outcomes: readonly RuleOutcome[]): Decided {
    return {
      answer: { ...failureModeAnswer(this.options.failureMode), limits: [], throttleFactor },
      replayed: false,
      outcomes,
    };
  }
}

/** The answer to the caller from the store's decision (or replayed first answer). */
function answerFrom(
  decision: CounterDecision,
  matched: readonly { rule: { name: string; scope: Scope } }[],
  input: CheckLimitInput,
  keyed: CheckLimitInput,
  throttleFactor: number,
): Decided {
  // A replayed answer may name rules changed since; report the ones still known.
  const scopes = new Map(matched.map((m) => [m.rule.name, m.rule.scope]));
  const limits: LimitStatus[] = [];
  const outcomes: RuleOutcome[] = [];
  for (const l of decision.limits) {
    const scope = scopes.get(l.rule);
    if (!scope) continue;
    outcomes.push({ rule: l.rule, scope, key: l.key, shadow: l.shadow, exceeded: l.exceeded });
    // The caller sees the API key it sent, never the hash that was stored.
    const key = scope === 'api_key' && l.key === keyed.apiKey ? input.apiKey! : l.key;
    limits.push({ ...l, scope, key });
  }
  return {
    answer: {
      allowed: decision.allowed,
      limits,
      retryAfterMs: decision.allowed ? null : Math.max(1, decision.retryAfterMs),
      degraded: false,
      throttleFactor,
    },
    replayed: decision.replayed,
    outcomes,
  };
}

/** An answer with what the listener is told of it. */
interface Decided {
  readonly answer: CheckLimitResult;
  readonly replayed: boolean;
  readonly outcomes: readonly RuleOutcome[];
}

/**
 * A key blocked for an attack is denied before any rule is asked, and nothing is counted: the
 * answer names the block as its rule, with the time it has left.
 */
function blocked(
  block: ActiveBlock,
  input: CheckLimitInput,
  keyed: CheckLimitInput,
  throttleFactor: number,
): Decided {
  const scope = block.scope as LimitStatus['scope'];
  // The caller sees the API key it sent, never the hash the block holds.
  const key = scope === 'api_key' && block.key === keyed.apiKey ? input.apiKey! : block.key;
  const remainingMs = Math.max(1, Math.ceil(block.remainingMs));
  return {
    answer: {
      allowed: false,
      limits: [
        {
          rule: ATTACK_BLOCK_RULE,
          scope,
          key,
          limit: 0,
          remaining: 0,
          windowMs: remainingMs,
          resetAfterMs: remainingMs,
          shadow: false,
          exceeded: true,
        },
      ],
      retryAfterMs: remainingMs,
      degraded: false,
      throttleFactor,
    },
    replayed: false,
    outcomes: [
      {
        rule: ATTACK_BLOCK_RULE,
        scope: block.scope,
        key: block.key,
        shadow: false,
        exceeded: true,
      },
    ],
  };
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
