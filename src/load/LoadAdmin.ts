import { ValidationError } from '../errors.js';
import type { LoadHub } from './LoadHub.js';
import type { LoadHistoryStore, ThrottleStore } from './ports.js';
import type { ThresholdSettings } from './ThresholdSettings.js';
import type {
  Direction,
  HostHealth,
  HourlySummary,
  MetricTrend,
  Thresholds,
  ThrottleEvent,
  TrendRow,
} from './types.js';
import { validateHost, validateHosts } from './validateReport.js';

/** Points by which the later half's mean must differ from the earlier half's to be a trend. */
const TREND_POINTS = 5;

/** AdminService's load queries and the throttle thresholds. */
export class LoadAdmin {
  constructor(
    private readonly hub: LoadHub,
    private readonly history: LoadHistoryStore,
    private readonly throttle: ThrottleStore,
    private readonly thresholds: ThresholdSettings,
  ) {}

  getThresholds(): Thresholds {
    return this.thresholds.current;
  }

  setThresholds(t: Thresholds | undefined): Promise<Thresholds> {
    if (!t) throw new ValidationError('thresholds', 'is required');
    return this.thresholds.set(t);
  }

  health(hosts: readonly string[]): HostHealth[] {
    return this.hub.health(validateHosts(hosts));
  }

  /** `minutes` 0 means 15; at most 1440. */
  async trend(minutes: number, hosts: readonly string[]): Promise<MetricTrend[]> {
    const m = bounded(minutes, 15, 1440, 'minutes');
    const rows = await this.history.trend(m, validateHosts(hosts));
    return rows.map((r) => ({
      host: r.host,
      metric: r.metric,
      average: r.average,
      max: r.max,
      direction: direction(r),
      samples: r.samples,
    }));
  }

  /** `hours` 0 means 24; at most 720. */
  hourly(hours: number, hosts: readonly string[]): Promise<HourlySummary[]> {
    return this.history.hourly(bounded(hours, 24, 720, 'hours'), validateHosts(hosts));
  }

  /** `limit` 0 means 100; at most 1000. Empty host: every host. */
  events(host: string, limit: number): Promise<ThrottleEvent[]> {
    if (host) validateHost(host);
    return this.throttle.listEvents(host || undefined, bounded(limit, 100, 1000, 'limit'));
  }
}

function bounded(value: number, fallback: number, max: number, field: string): number {
  if (value === 0) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new ValidationError(field, `must be 1-${max} (0 means ${fallback})`);
  return value;
}

/** Rising or falling when the later half's mean is more than 5 points off the earlier's. */
export function direction(r: Pick<TrendRow, 'firstHalf' | 'secondHalf'>): Direction {
  if (r.firstHalf === null || r.secondHalf === null) return 'unknown';
  const d = r.secondHalf - r.firstHalf;
  if (d > TREND_POINTS) return 'rising';
  if (d < -TREND_POINTS) return 'falling';
  return 'stable';
}
