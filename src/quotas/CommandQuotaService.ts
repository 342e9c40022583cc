import { createHash } from 'node:crypto';
import { NO_AUDIT, type DecisionListener } from '../core/decisions.js';
import { failureModeAnswer, type FailureMode } from '../core/failureMode.js';
import type { FollowedCache } from '../core/FollowedCache.js';
import type { ThrottleSource } from '../core/ports.js';
import { StoreUnavailableError } from '../errors.js';
import type { CommandRuleIndex } from './CommandRuleIndex.js';
import type { CommandQuotaStore, CurrentUsage, PeriodCount } from './ports.js';
import { TIERS } from './tiers.js';
import type {
  CommandQuotaInput,
  CommandQuotaRule,
  CommandQuotaResult,
  CommandQuotaStatus,
  ExecutionInput,
  PeriodLimits,
  PeriodUsage,
  QuotaStatus,
  Tier,
  TierName,
} from './types.js';
import { NO_EXECUTIONS } from './types.js';
import { validateCommandQuota, validateExecution, validateUserId } from './validateQuotaInput.js';

export interface CommandQuotaServiceOptions {
  readonly failureMode: FailureMode;
  readonly timezone: string;
  /** A reservation never settled expires (and stays counted) after this, in seconds. */
  readonly reservationTtlS: number;
  /** Told of every answer (audit, statistics, metrics). @default none */
  readonly listener?: DecisionListener;
}

const NO_LIMITS: PeriodLimits = { daily: null, weekly: null, monthly: null };

/**
 * Command quotas: CheckCommandQuota, RecordExecution and GetQuotaStatus. Rules and tiers come
 * from this replica's caches (every replica follows an admin write within a second); usage is
 * counted in the store, atomically for every replica.
 */
export class CommandQuotaService {
  constructor(
    private readonly rules: FollowedCache<CommandRuleIndex>,
    private readonly tiers: FollowedCache<ReadonlyMap<string, TierName>>,
    private readonly store: CommandQuotaStore,
    private readonly throttle: ThrottleSource,
    private readonly options: CommandQuotaServiceOptions,
  ) {}

  async check(request: CommandQuotaInput): Promise<CommandQuotaResult> {
    const input = validateCommandQuota(request);
    // Looked up once: it sets the limits, and it labels the decision for the listeners by the
    // rule's command type (a set the admins bound), not the caller's.
    const rule = this.rules.value?.ruleFor(input.userId, input.commandType);
    const { answer, replayed } = await this.decide(input, rule);
    const ruleType = rule?.commandType ?? '*';
    (this.options.listener ?? NO_AUDIT).decided({
      source: 'command_quota',
      allowed: answer.allowed,
      degraded: answer.degraded,
      replayed,
      rules: [
        {
          rule: `command:${ruleType}`,
          scope: 'command',
          key: `${input.userId}/${input.commandType}`,
          shadow: false,
          exceeded: answer.reason?.startsWith('QUOTA_EXCEEDED') === true,
        },
      ],
      caller: { userId: input.userId, host: input.host, commandType: input.commandType },
      reason: answer.reason ?? undefined,
      at: Date.now(),
    });
    return answer;
  }

  private async decide(
    input: CommandQuotaInput,
    rule: CommandQuotaRule | undefined,
  ): Promise<{ answer: CommandQuotaResult; replayed: boolean }> {
    const throttleFactor = this.throttle.factorFor(input.host);
    const index = this.rules.value;
    const tiers = this.tiers.value;
    const tier = TIERS[tiers?.get(input.userId) ?? 'default'];
    // The host protects itself whoever asks, and a denial for it consumes nothing: the periods
    // are read, not counted.
    if (throttleFactor <= 0) {
      const answer: CommandQuotaResult = {
        allowed: false,
        reason: 'SYSTEM_OVERLOADED',
        periods: await this.currentPeriods(input, index, tier),
        tier: tier.name,
        throttleFactor,
        delayMs: 0,
        reservationId: null,
        degraded: false,
      };
      return { answer, replayed: false };
    }
    const delayMs = tier.delayed ? Math.round((1 - throttleFactor) * 1000) : 0;
    // Without rules or tiers there is nothing to decide by: that is not "no rule applies".
    if (!index || !tiers) {
      return { answer: this.failureMode(tier, throttleFactor, delayMs), replayed: false };
    }
    const limits = scaled(rule?.limits, tier);
    let decision;
    try {
      decision = await this.store.decide({
        userId: input.userId,
        commandType: input.commandType,
        cost: input.cost,
        limits,
        idempotencyKey: input.requestId ? idempotencyKey(input) : null,
        timezone: this.options.timezone,
        reservationTtlS: this.options.reservationTtlS,
      });
    } catch (err) {
      // Only a store that does not answer gets the failure mode (see LimitService.check).
      if (err instanceof StoreUnavailableError) {
        return { answer: this.failureMode(tier, throttleFactor, delayMs), replayed: false };
      }
      throw err;
    }
    const answer: CommandQuotaResult = {
      allowed: decision.allowed,
      reason: decision.allowed ? null : `QUOTA_EXCEEDED: ${decision.exhausted.join(', ')}`,
      periods: decision.periods.map((p) => usage(p, limits)),
      tier: tier.name,
      throttleFactor,
      delayMs: decision.allowed ? delayMs : 0,
      reservationId: decision.reservationId,
      degraded: false,
    };
    return { answer, replayed: decision.replayed };
  }

  /** Stores an execution durably; resolves with its id once it is committed. */
  async record(request: ExecutionInput): Promise<{ executionId: string }> {
    const input = validateExecution(request);
    return this.store.record({
      reservationId: input.reservationId ?? null,
      idempotencyKey: input.requestId
        ? `record_execution:${input.requestId}:${digest([input.userId, input.commandType, input.reservationId ?? ''])}`
        : null,
      userId: input.userId,
      commandType: input.commandType,
      host: input.host ?? '',
      startedAt: input.startedAt ?? null,
      durationMs: input.durationMs,
      cpuPercent: input.cpuPercent,
      memoryBytes: input.memoryBytes,
      exitCode: input.exitCode,
      status: input.status,
      timezone: this.options.timezone,
    });
  }

  /**
   * The user's tier, per command type with a rule or with usage the three periods, and the last
   * 24 h of executions. Read from the store: throws StoreUnavailableError when it is away.
   */
  async status(requestUserId: string): Promise<QuotaStatus> {
    const userId = validateUserId(requestUserId);
    const index = this.rules.value;
    const tiers = this.tiers.value;
    // Without rules or tiers, limits would read as unlimited: not an answer to give.
    if (!index || !tiers) throw new StoreUnavailableError('command quota rules not loaded yet');
    const [current, recent] = await Promise.all([
      this.store.usage(userId, this.options.timezone),
      this.store.recent(userId),
    ]);
    const tier = TIERS[tiers.get(userId) ?? 'default'];
    const types = new Set([
      ...index.typesFor(userId),
      ...current.commands.map((c) => c.commandType),
    ]);
    const commands: CommandQuotaStatus[] = [...types].sort().map((commandType) => ({
      commandType,
      periods: periodsOf(current, userId, commandType, index, tier),
      recent: recent.byCommandType.get(commandType) ?? NO_EXECUTIONS,
    }));
    return { userId, tier: tier.name, commands, recent: recent.total };
  }

  /** The periods of one user and command type as they stand; none if the store is away. */
  private async currentPeriods(
    input: CommandQuotaInput,
    index: CommandRuleIndex | undefined,
    tier: Tier,
  ): Promise<readonly PeriodUsage[]> {
    if (!index) return [];
    try {
      const current = await this.store.usage(input.userId, this.options.timezone);
      return periodsOf(current, input.userId, input.commandType, index, tier);
    } catch (err) {
      if (err instanceof StoreUnavailableError) return [];
      throw err;
    }
  }

  private failureMode(tier: Tier, throttleFactor: number, delayMs: number): CommandQuotaResult {
    const answer = failureModeAnswer(this.options.failureMode);
    return {
      allowed: answer.allowed,
      reason: answer.allowed ? null : 'QUOTA_UNAVAILABLE',
      periods: [],
      tier: tier.name,
      throttleFactor,
      delayMs: answer.allowed ? delayMs : 0,
      reservationId: null,
      degraded: true,
    };
  }
}

/** A rule's limits for a tier: multiplied, or none at all for an unlimited tier or no rule. */
function scaled(limits: PeriodLimits | undefined, tier: Tier): PeriodLimits {
  const m = tier.multiplier;
  if (!limits || m === null) return NO_LIMITS;
  const scale = (n: number | null) => (n === null ? null : n * m);
  return {
    daily: scale(limits.daily),
    weekly: scale(limits.weekly),
    monthly: scale(limits.monthly),
  };
}

/** A command type's three periods from the store's usage, with the user's limits. */
function periodsOf(
  current: CurrentUsage,
  userId: string,
  commandType: string,
  index: CommandRuleIndex,
  tier: Tier,
): PeriodUsage[] {
  const limits = scaled(index.ruleFor(userId, commandType)?.limits, tier);
  const counts = current.commands.find((c) => c.commandType === commandType)?.periods;
  return current.bounds.map((b, i) => usage({ ...b, used: counts?.[i]?.used ?? 0 }, limits));
}

function usage(count: PeriodCount, limits: PeriodLimits): PeriodUsage {
  const limit = limits[count.period];
  return {
    period: count.period,
    limit,
    used: count.used,
    remaining: limit === null ? null : Math.max(0, limit - count.used),
    resetsAt: count.resetsAt,
  };
}

/**
 * The stored key of a request_id: bound to what the call asks for, so that a request_id reused
 * for another user, command type or cost is a new decision, not a replay of the first.
 */
function idempotencyKey(input: CommandQuotaInput): string {
  return `command_quota:${input.requestId}:${digest([input.userId, input.commandType, String(input.cost)])}`;
}

function digest(parts: readonly string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 22);
}
