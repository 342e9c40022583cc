import { MergingBuffer, type MergeRules } from '../core/MergingBuffer.js';
import type { LoadHistoryStore } from './ports.js';
import type { HistoryRow, HostSnapshot } from './types.js';

type Row = { -readonly [K in keyof HistoryRow]: HistoryRow[K] };

/** Rows of one host merge into means (weighted by samples), maxima and the lowest factor. */
const HISTORY_RULES: MergeRules<Row> = {
  keyOf: (row) => row.host,
  copy: (row) => ({ ...row }),
  weight: (row) => row.samples,
  merge(into, row) {
    const n = into.samples + row.samples;
    const mean = (a: number, b: number) => (a * into.samples + b * row.samples) / n;
    into.cpuPercent = mean(into.cpuPercent, row.cpuPercent);
    into.memoryPercent = mean(into.memoryPercent, row.memoryPercent);
    into.diskPercent = mean(into.diskPercent, row.diskPercent);
    into.loadAvg1m = mean(into.loadAvg1m, row.loadAvg1m);
    into.cpuMax = Math.max(into.cpuMax, row.cpuMax);
    into.memoryMax = Math.max(into.memoryMax, row.memoryMax);
    into.diskMax = Math.max(into.diskMax, row.diskMax);
    into.loadAvg1mMax = Math.max(into.loadAvg1mMax, row.loadAvg1mMax);
    into.throttleFactor = Math.min(into.throttleFactor, row.throttleFactor);
    if (row.at > into.at) into.at = row.at;
    into.samples = n;
  },
};

/**
 * Load history waiting to be written in one statement. Bounded at `capacity` rows: past it, a
 * sample is merged into its host's newest buffered row (means and maxima, `samples` counts
 * them), so nothing is silently lost; only a host with no row at all while the buffer is full
 * is dropped, and counted. A failed flush puts its rows back the same way.
 */
export class LoadHistoryBuffer {
  private readonly buffer: MergingBuffer<Row>;

  constructor(
    private readonly store: LoadHistoryStore,
    capacity = 10_000,
  ) {
    this.buffer = new MergingBuffer(HISTORY_RULES, capacity);
  }

  /** Samples merged into another row because the buffer was full. */
  get merged(): number {
    return this.buffer.merged;
  }

  /** Samples dropped: the buffer was full and held no row of their host. */
  get dropped(): number {
    return this.buffer.dropped;
  }

  get size(): number {
    return this.buffer.size;
  }

  add(snapshot: HostSnapshot, factor: number): void {
    this.buffer.add({
      host: snapshot.host,
      at: snapshot.at,
      samples: 1,
      cpuPercent: snapshot.cpuPercent,
      cpuMax: snapshot.cpuPercent,
      memoryPercent: snapshot.memoryPercent,
      memoryMax: snapshot.memoryPercent,
      diskPercent: snapshot.diskPercent,
      diskMax: snapshot.diskPercent,
      loadAvg1m: snapshot.loadAvg1m,
      loadAvg1mMax: snapshot.loadAvg1m,
      throttleFactor: factor,
    });
  }

  /** Writes what is buffered; on failure the rows come back and the error is thrown. */
  flush(): Promise<number> {
    return this.buffer.flush((rows) => this.store.append(rows));
  }
}
