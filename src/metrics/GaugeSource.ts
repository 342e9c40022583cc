/** A figure read when Prometheus scrapes, one value per label set: nothing runs between scrapes. */
export interface GaugeSource {
  /** Full metric name, `quota_` first. */
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  read(): Iterable<{ readonly labels?: Readonly<Record<string, string>>; readonly value: number }>;
}
