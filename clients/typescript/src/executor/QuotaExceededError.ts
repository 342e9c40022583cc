import type { CheckCommandQuotaResponse } from '../gen/quota/v1/quota_service.js';
import { CommandDeniedError } from './CommandDeniedError.js';
import { toPeriodQuotas, type PeriodName, type PeriodQuota } from './PeriodQuota.js';

/** The user's command quota is used up (reason `QUOTA_EXCEEDED: <periods>`). */
export class QuotaExceededError extends CommandDeniedError {
  /** The exhausted periods, as the reason names them (`['daily']`, `['weekly', 'monthly']`). */
  readonly exceeded: readonly PeriodName[];
  /** Daily, weekly and monthly usage as it stands, each with its limit and reset time. */
  readonly periods: readonly PeriodQuota[];
  /**
   * When every exhausted period will have reset: the earliest time the same command could be
   * admitted (undefined if the server named no period it sent).
   */
  readonly retryAt: Date | undefined;
  /** The user's tier: default, premium or enterprise. */
  readonly tier: string;

  constructor(
    decision: CheckCommandQuotaResponse,
    request: { readonly userId: string; readonly commandType: string },
  ) {
    const exceeded = exceededPeriods(decision.reason);
    const periods = toPeriodQuotas(decision.periods);
    const resets = periods
      .filter((p) => exceeded.includes(p.period) && p.resetsAt)
      .map((p) => p.resetsAt!.getTime());
    const retryAt = resets.length > 0 ? new Date(Math.max(...resets)) : undefined;
    super(
      `command quota exceeded for user "${request.userId}", command type "${request.commandType}"` +
        ` (${exceeded.join(', ') || decision.reason})` +
        (retryAt ? `; admitted again from ${retryAt.toISOString()}` : ''),
      decision,
      request,
    );
    this.exceeded = exceeded;
    this.periods = periods;
    this.retryAt = retryAt;
    this.tier = decision.tier;
  }
}

/** The period names of `QUOTA_EXCEEDED: daily, weekly`. */
export function exceededPeriods(reason: string): PeriodName[] {
  const list = reason.slice(reason.indexOf(':') + 1);
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s): s is PeriodName => s === 'daily' || s === 'weekly' || s === 'monthly');
}
