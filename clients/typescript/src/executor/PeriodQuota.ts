import type { PeriodUsage } from '../gen/quota/v1/quota_service.js';
import { Period } from '../gen/quota/v1/types.js';

/** A calendar period of command quotas, by the name the server's reasons use. */
export type PeriodName = 'daily' | 'weekly' | 'monthly';

/** A user's usage of one calendar period of a command type's quota. */
export interface PeriodQuota {
  readonly period: PeriodName;
  /** Commands admitted per period for the user's tier; 0 when unlimited. */
  readonly limit: number;
  /** No limit applies (enterprise tier, or no rule). */
  readonly unlimited: boolean;
  /** Commands counted in the current period. */
  readonly used: number;
  /** Commands still admitted in the current period; 0 when unlimited. */
  readonly remaining: number;
  /**
   * Start of the next period (the server's calendar, in its QUOTA_TIMEZONE); undefined only if
   * a server sent none.
   */
  readonly resetsAt: Date | undefined;
}

const NAMES: Partial<Record<Period, PeriodName>> = {
  [Period.PERIOD_DAILY]: 'daily',
  [Period.PERIOD_WEEKLY]: 'weekly',
  [Period.PERIOD_MONTHLY]: 'monthly',
};

/** The periods of a CheckCommandQuota answer (periods the client does not know are left out). */
export function toPeriodQuotas(periods: readonly PeriodUsage[]): PeriodQuota[] {
  const out: PeriodQuota[] = [];
  for (const p of periods) {
    const period = NAMES[p.period];
    if (!period) continue;
    const { limit, unlimited, used, remaining, resetsAt } = p;
    out.push({ period, limit, unlimited, used, remaining, resetsAt });
  }
  return out;
}
