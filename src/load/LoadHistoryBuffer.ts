import type { LoadHistoryStore } from './ports.js';
import type { HistoryRow, HostSnapshot } from './types.js';

type Row = { -readonly [K in keyof HistoryRow]: HistoryRow[K] };

/**
 * Load history waiting to be written in one statement. Bounded at `capacity` rows: past it, a
 * sample is merged into its host's newest buffered row (means and maxima, `samples` counts
 * them), so nothing is silently lost; only a host with no row at all while the buffer is full
 * is dropped, and counted. A failed flush puts its rows back the same way.
 */
export class LoadHistoryBuffer {
  private rows: Row[] = [];
  private newest = new Map<string, Row>();
  private mergedCount = 0;
  private droppedCount = 0;

  constructor(
    private readonly store: LoadHistoryStore,
    private readonly capacity = 10_000,
  ) {}

  /** Samples merged into another row because the buffer was full. */
  get merged(): number {
    return this.mergedCount;
  }

  /** Samples dropped: the buffer was full and held no row of their host. */
  get dropped(): number {
    return this.droppedCount;
  }

  get size(): number {
    return this.rows.length;
  }

  add(snapshot: HostSnapshot, factor: number): void {
    this.addRow({
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
  async flush(): Promise<number> {
    if (this.rows.length === 0) return 0;
    const batch = this.rows;
    this.rows = [];
    this.newest = new Map();
    try {
      await this.store.append(batch);
      return batch.length;
    } catch (err) {
      for (const row of batch) this.addRow(row);
      throw err;
    }
  }

  private addRow(row: Row): void {
    if (this.rows.length < this.capacity) {
      const copy = { ...row };
      this.rows.push(copy);
      this.newest.set(row.host, copy);
      return;
    }
    const into = this.newest.get(row.host);
    if (!into) {
      this.droppedCount += row.samples;
      return;
    }
    this.mergedCount += row.samples;
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
  }
}
