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

  setThresholds(t: Thresholds): Promise<Thresholds> {
    return this.thresholds.set(t);
  }

  /** Every known host when `hosts` is undefined. */
  health(hosts: readonly string[] | undefined): HostHealth[] {
    return this.hub.health(validateHosts(hosts));
  }

  /** Over the last `minutes`, 1 to 1440. */
  async trend(minutes: number, hosts: readonly string[] | undefined): Promise<MetricTrend[]> {
    const rows = await this.history.trend(inRange(minutes, 1440, 'minutes'), validateHosts(hosts));
    return rows.map((r) => ({
      host: r.host,
      metric: r.metric,
      average: r.average,
      max: r.max,
      direction: direction(r),
      samples: r.samples,
    }));
  }

  /** The last `hours`, 1 to 720. */
  hourly(hours: number, hosts: readonly string[] | undefined): Promise<HourlySummary[]> {
    return this.history.hourly(inRange(hours, 720, 'hours'), validateHosts(hosts));
  }

  /** The newest `limit` (1 to 1000) events of `host`, or of every host when undefined. */
  events(host: string | undefined, limit: number): Promise<ThrottleEvent[]> {
    if (host !== undefined) validateHost(host);
    return this.throttle.listEvents(host, inRange(limit, 1000, 'limit'));
  }
}

function inRange(value: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new ValidationError(field, `must be 1-${max}`);
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
