/** A figure read when Prometheus scrapes, one value per label set: nothing runs between scrapes. */
export interface GaugeSource {
  /** Full metric name, `quota_` first. Sources of one name are one metric: same labels, kind. */
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  /**
   * "counter" for a count since the process started (a `_total` name), which MUST never go
   * down; "gauge" for a level that may. @default "gauge"
   */
  readonly kind?: 'gauge' | 'counter';
  read(): Iterable<{ readonly labels?: Readonly<Record<string, string>>; readonly value: number }>;
}
