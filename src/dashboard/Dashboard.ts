import type { AuditReports, AttackPattern, DecisionCounts } from '../audit/types.js';
import { StoreUnavailableError, ValidationError } from '../errors.js';
import type { LoadAdmin } from '../load/LoadAdmin.js';
import type { HostHealth, MetricTrend } from '../load/types.js';
import type { QuotaUsageOverview, QuotaUsageReader } from '../quotas/ports.js';

/** Minutes of load the dashboard's trends cover. */
const TREND_MINUTES = 15;
/** Violators and users listed. */
const TOP = 10;
const MAX_HOURS = 720;

/** Everything the operators' overview shows, read at once. */
export interface DashboardView {
  /** Database clock at the read; this replica's clock when the database did not answer. */
  readonly at: Date;
  /** False when a part could not be read because the database did not answer. */
  readonly databaseAvailable: boolean;
  readonly hosts: readonly HostHealth[];
  readonly trends: readonly MetricTrend[];
  readonly topViolators: readonly { scope: string; key: string; count: number }[];
  readonly attacks: readonly AttackPattern[];
  readonly violations: number;
  /** Totals per rule and command type over the hours asked. */
  readonly stats: readonly DecisionCounts[];
  readonly quotaUsage: QuotaUsageOverview['byCommandType'];
  readonly topUsers: QuotaUsageOverview['topUsers'];
}

export interface DashboardSources {
  readonly load: Pick<LoadAdmin, 'health' | 'trend'>;
  readonly audit: AuditReports;
  readonly quotas: QuotaUsageReader;
  readonly timezone: string;
  /** Whether the database answers now (the breaker's view). */
  readonly databaseAvailable: () => boolean;
}

/**
 * GetDashboard: host health, load trends, violations, statistics and quota usage in one answer.
 * A part that needs the database is left empty while the database does not answer, and the
 * view says so, so an operator still sees host health (held in memory) during an outage.
 */
export class Dashboard {
  constructor(private readonly sources: DashboardSources) {}

  /** Over the last `hours`, 1 to 720. */
  async read(hours: number): Promise<DashboardView> {
    if (!Number.isInteger(hours) || hours < 1 || hours > MAX_HOURS)
      throw new ValidationError('hours', `must be 1 to ${MAX_HOURS}, got ${hours}`);
    const { load, audit, quotas, timezone } = this.sources;
    const until = new Date();
    const since = new Date(until.getTime() - hours * 3_600_000);
    let available = this.sources.databaseAvailable();
    // Each part on its own: one that the database cannot answer leaves only itself empty.
    const part = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await read();
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        available = false;
        return undefined;
      }
    };
    const [trends, violations, stats, usage] = await Promise.all([
      part(() => load.trend(TREND_MINUTES, undefined)),
      part(() => audit.violations({ since, until, limit: 1 })),
      part(() => audit.stats({ since, until })),
      part(() => quotas.overview(timezone, TOP)),
    ]);
    return {
      at: usage?.at ?? until,
      databaseAvailable: available,
      hosts: load.health(undefined),
      trends: trends ?? [],
      topViolators: violations?.topKeys.slice(0, TOP) ?? [],
      attacks: violations?.attacks ?? [],
      violations: violations?.total ?? 0,
      stats: stats?.totals ?? [],
      quotaUsage: usage?.byCommandType ?? [],
      topUsers: usage?.topUsers ?? [],
    };
  }
}
