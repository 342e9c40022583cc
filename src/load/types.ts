/** One host's load figures. Percentages are 0-100; rates are per second; all at least 0. */
export interface LoadFigures {
  readonly cpuPercent: number;
  readonly memoryPercent: number;
  /** Disk used, in percent of the data volume. */
  readonly diskPercent: number;
  readonly diskReadBytesPerSec: number;
  readonly diskWriteBytesPerSec: number;
  readonly netRxBytesPerSec: number;
  readonly netTxBytesPerSec: number;
  readonly loadAvg1m: number;
}

/** A host's figures at one time. */
export interface HostSnapshot extends LoadFigures {
  readonly host: string;
  readonly at: Date;
}

/** What watchers and health see of a host: its latest snapshot, factor and freshness. */
export interface HostLoad extends HostSnapshot {
  /** Factor under the thresholds in force, in [0, 1]. */
  readonly throttleFactor: number;
  /** No data for 3 intervals: the figures are the last ones known. */
  readonly stale: boolean;
  /** Time since the latest data arrived, in ms. */
  readonly ageMs: number;
}

/** Load percentages at which the throttle factor steps down. Strictly increasing, 0-100. */
export interface Thresholds {
  readonly slight: number;
  readonly moderate: number;
  readonly heavy: number;
  readonly critical: number;
}

export type HealthState = 'healthy' | 'warning' | 'critical';

export interface HostHealth {
  readonly host: string;
  readonly state: HealthState;
  /** One line per metric that is not healthy, e.g. "cpu 85.0% >= 80%". */
  readonly reasons: readonly string[];
  readonly throttleFactor: number;
  readonly at: Date;
}

export type Direction = 'rising' | 'falling' | 'stable' | 'unknown';

export interface MetricTrend {
  readonly host: string;
  readonly metric: string;
  readonly average: number;
  readonly max: number;
  readonly direction: Direction;
  readonly samples: number;
}

export interface HourlySummary {
  readonly host: string;
  readonly hour: Date;
  readonly samples: number;
  readonly cpuAvg: number;
  readonly cpuMax: number;
  readonly memoryAvg: number;
  readonly memoryMax: number;
  readonly diskAvg: number;
  readonly diskMax: number;
  readonly loadAvg1mAvg: number;
  readonly loadAvg1mMax: number;
}

export interface ThrottleEvent {
  readonly host: string;
  readonly at: Date;
  readonly previousFactor: number;
  readonly factor: number;
  readonly cpuPercent: number;
  readonly memoryPercent: number;
}

/**
 * A row of load history: one sample, or several of one host merged when the buffer was full
 * (values are then means over `samples`, and the *Max fields their maxima).
 */
export interface HistoryRow {
  readonly host: string;
  readonly at: Date;
  readonly samples: number;
  readonly cpuPercent: number;
  readonly cpuMax: number;
  readonly memoryPercent: number;
  readonly memoryMax: number;
  readonly diskPercent: number;
  readonly diskMax: number;
  readonly loadAvg1m: number;
  readonly loadAvg1mMax: number;
  readonly throttleFactor: number;
}

/** Per host and metric over a span, from the store: means of the whole span and its halves. */
export interface TrendRow {
  readonly host: string;
  readonly metric: string;
  readonly average: number;
  readonly max: number;
  readonly samples: number;
  /** Means of the earlier and the later half of the span; null when a half has no sample. */
  readonly firstHalf: number | null;
  readonly secondHalf: number | null;
}
