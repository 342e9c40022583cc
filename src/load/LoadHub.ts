import type { ThrottleSource } from '../core/ports.js';
import type { Logger } from '../log.js';
import { assessHealth } from './assessHealth.js';
import type { LoadHistoryBuffer } from './LoadHistoryBuffer.js';
import type { LoadStore } from './ports.js';
import type { ThresholdSettings } from './ThresholdSettings.js';
import { throttleFactor } from './ThrottlePolicy.js';
import type { HostHealth, HostLoad, HostSnapshot, LoadFigures } from './types.js';
import { validateHosts, validateReport, validateWatchInterval } from './validateReport.js';
import { coalesced } from '../core/coalesced.js';

export interface LoadHubOptions {
  /** The sampling interval, in ms: staleness is counted in these. */
  readonly intervalMs: number;
  /** Intervals without data after which a host is stale. @default 3 */
  readonly staleAfter?: number;
  /** Intervals without data after which a host is forgotten. @default 10 */
  readonly dropAfter?: number;
}

interface Entry {
  snapshot: HostSnapshot;
  /** performance.now() when the data was written (by the store's clock when read from it). */
  seenAt: number;
}

/**
 * This replica's view of every host's load. Its own samples and the reports it receives are
 * written to the store, which tells every replica (hostWritten); each replica then reads that
 * host's row, and re-reads all of them every interval as a safety net. Watchers and the
 * throttle factor read this view only: they never cause a sample or a query.
 */
export class LoadHub implements ThrottleSource {
  private readonly hosts = new Map<string, Entry>();
  private readonly dirty = new Set<string>();
  private fetchTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly staleMs: number;
  private readonly dropMs: number;
  private writeFailures = 0;
  private watchers = 0;
  private stopped = false;

  constructor(
    private readonly store: LoadStore,
    private readonly history: LoadHistoryBuffer,
    private readonly thresholds: ThresholdSettings,
    private readonly logger: Logger,
    private readonly options: LoadHubOptions,
  ) {
    this.staleMs = options.intervalMs * (options.staleAfter ?? 3);
    this.dropMs = options.intervalMs * (options.dropAfter ?? 10);
  }

  async start(): Promise<void> {
    await this.refresh().catch((err: unknown) =>
      this.logger.warn({ err }, 'initial load refresh failed'),
    );
    // On a slow database, polls must not pile up on the pool the decisions use.
    const poll = coalesced(() => this.refresh().catch(() => undefined));
    this.pollTimer = setInterval(() => void poll(), this.options.intervalMs);
    this.pollTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.fetchTimer);
  }

  /** Watches in progress. */
  get watching(): number {
    return this.watchers;
  }

  /** 1.0 for an empty, unknown or forgotten host. */
  factorFor(host: string | undefined): number {
    if (!host) return 1;
    const e = this.hosts.get(host);
    if (!e || performance.now() - e.seenAt > this.dropMs) return 1;
    return this.factorOf(e.snapshot);
  }

  /** A sample of this replica's host: applied here at once, then written for the others. */
  async ingestLocal(snapshot: HostSnapshot): Promise<void> {
    const factor = this.factorOf(snapshot);
    // Stamped by the database clock like every report, so that hosts agree on time; while the
    // database is down the sampler's own time keeps this replica's view current.
    let stamped = snapshot;
    try {
      const { at } = await this.store.write({ ...snapshot, at: null }, factor);
      stamped = { ...snapshot, at };
      this.writeFailures = 0;
    } catch (err) {
      // Once per outage, not once per interval.
      if (this.writeFailures++ === 0) this.logger.warn({ err }, 'load snapshot not written');
    }
    this.put(stamped, performance.now());
    this.history.add(stamped, factor);
  }

  /** An executor's report: validated, written (database clock), applied; returns its factor. */
  async report(input: LoadFigures & { host: string }): Promise<number> {
    const valid = validateReport(input);
    const factor = this.factorOf(valid);
    const { at } = await this.store.write(
      { ...figures(valid), host: valid.host, at: null },
      factor,
    );
    const snapshot: HostSnapshot = { ...figures(valid), host: valid.host, at };
    this.put(snapshot, performance.now());
    this.history.add(snapshot, factor);
    return factor;
  }

  /** The store says `host` was written (by any replica): read it soon, coalescing bursts. */
  hostWritten(host: string): void {
    if (this.stopped) return;
    this.dirty.add(host);
    this.fetchTimer ??= setTimeout(() => {
      this.fetchTimer = undefined;
      const hosts = [...this.dirty];
      this.dirty.clear();
      void this.read(hosts).catch(() => undefined);
    }, 10);
  }

  /** Reads every host written within the drop age, and forgets hosts silent past it. */
  async refresh(): Promise<void> {
    const now = performance.now();
    for (const [host, e] of this.hosts) if (now - e.seenAt > this.dropMs) this.hosts.delete(host);
    await this.read(undefined);
  }

  /** Known hosts (all, or those named), with their factor and freshness. */
  list(hosts?: readonly string[]): HostLoad[] {
    const now = performance.now();
    const out: HostLoad[] = [];
    const names = hosts ?? [...this.hosts.keys()].sort();
    for (const host of names) {
      const e = this.hosts.get(host);
      if (!e) continue;
      const ageMs = Math.max(0, now - e.seenAt);
      if (ageMs > this.dropMs) continue;
      out.push({
        ...e.snapshot,
        throttleFactor: this.factorOf(e.snapshot),
        stale: ageMs > this.staleMs,
        ageMs,
      });
    }
    return out;
  }

  health(hosts?: readonly string[]): HostHealth[] {
    const t = this.thresholds.current;
    return this.list(hosts).map((l) => assessHealth(l, t));
  }

  /**
   * Sends every known host (of `hosts`, when given) at once, then again every `intervalMs`
   * (100 ms to 1 h), until `signal` aborts. Reads this view only.
   */
  watch(
    intervalMs: number,
    hosts: readonly string[] | undefined,
    send: (load: HostLoad) => void,
    signal: AbortSignal,
  ): Promise<void> {
    validateWatchInterval(intervalMs);
    validateHosts(hosts);
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      this.watchers++;
      const emit = () => {
        for (const l of this.list(hosts)) send(l);
      };
      emit();
      const timer = setInterval(emit, intervalMs);
      signal.addEventListener(
        'abort',
        () => {
          clearInterval(timer);
          this.watchers--;
          resolve();
        },
        { once: true },
      );
    });
  }

  private async read(hosts: readonly string[] | undefined): Promise<void> {
    const rows = await this.store.latest(this.dropMs, hosts);
    const now = performance.now();
    for (const row of rows) this.put(row, now - row.ageMs);
  }

  private put(snapshot: HostSnapshot, seenAt: number): void {
    const cur = this.hosts.get(snapshot.host);
    if (cur && snapshot.at.getTime() < cur.snapshot.at.getTime()) return;
    const same = cur !== undefined && cur.snapshot.at.getTime() === snapshot.at.getTime();
    this.hosts.set(snapshot.host, {
      snapshot: same
        ? cur.snapshot
        : { ...figures(snapshot), host: snapshot.host, at: snapshot.at },
      seenAt: same ? Math.max(cur.seenAt, seenAt) : seenAt,
    });
  }

  private factorOf(f: LoadFigures): number {
    return throttleFactor(f.cpuPercent, f.memoryPercent, this.thresholds.current);
  }
}

/** Only the figures, so that stored rows' extra fields are not kept or sent. */
function figures(f: LoadFigures): LoadFigures {
  return {
    cpuPercent: f.cpuPercent,
    memoryPercent: f.memoryPercent,
    diskPercent: f.diskPercent,
    diskReadBytesPerSec: f.diskReadBytesPerSec,
    diskWriteBytesPerSec: f.diskWriteBytesPerSec,
    netRxBytesPerSec: f.netRxBytesPerSec,
    netTxBytesPerSec: f.netTxBytesPerSec,
    loadAvg1m: f.loadAvg1m,
  };
}
