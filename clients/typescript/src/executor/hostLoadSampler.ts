import type { QuotaConnection } from '../connect.js';
import { HostLoadReader } from './HostLoadReader.js';

/** One executor's wish to have its host's load reported. */
export interface LoadReportTarget {
  readonly connection: QuotaConnection;
  readonly host: string;
  readonly intervalMs: number;
  readonly onReport: (throttleFactor: number) => void;
  readonly onError: (error: unknown) => void;
}

/** The state of this process's load sampler, for metrics and tests. */
export interface LoadSamplerStatus {
  /** Executors reporting load through it now. */
  readonly executors: number;
  /** Whether its timer runs (exactly one timer per process while `executors` > 0). */
  readonly running: boolean;
  /** Its interval in milliseconds (the shortest its executors ask for); undefined when stopped. */
  readonly intervalMs: number | undefined;
  /** Since the process started: readings of the host, reports answered, failures. */
  readonly samples: number;
  readonly reports: number;
  readonly failures: number;
}

interface Sampler {
  readonly targets: Set<LoadReportTarget>;
  readonly reader: HostLoadReader;
  timer: NodeJS.Timeout | undefined;
  intervalMs: number | undefined;
  busy: boolean;
}

/** One per process, shared by every executor: one timer, one reading of the host per tick. */
let sampler: Sampler | undefined;
const totals = { samples: 0, reports: 0, failures: 0 };

/** Adds a target; the returned function removes it, and the last one out stops the timer. */
export function joinLoadSampler(target: LoadReportTarget): () => void {
  if (!sampler) {
    sampler = {
      targets: new Set(),
      reader: new HostLoadReader(),
      timer: undefined,
      intervalMs: undefined,
      busy: false,
    };
    // A first reading, so that the first report already has rates over an interval.
    void sampler.reader.read().catch(() => undefined);
  }
  const s = sampler;
  s.targets.add(target);
  retime(s);
  let left = false;
  return () => {
    if (left) return;
    left = true;
    s.targets.delete(target);
    if (s.targets.size > 0) retime(s);
    else {
      clearInterval(s.timer);
      if (sampler === s) sampler = undefined;
    }
  };
}

export function loadSamplerStatus(): LoadSamplerStatus {
  return {
    executors: sampler?.targets.size ?? 0,
    running: sampler?.timer !== undefined,
    intervalMs: sampler?.intervalMs,
    ...totals,
  };
}

function retime(s: Sampler): void {
  const intervalMs = Math.min(...[...s.targets].map((t) => t.intervalMs));
  if (intervalMs === s.intervalMs) return;
  clearInterval(s.timer);
  s.intervalMs = intervalMs;
  s.timer = setInterval(() => void tick(s), intervalMs);
  // Reporting load is no reason to keep a process alive.
  s.timer.unref();
}

/** Never rejects: every failure goes to the targets' onError. */
async function tick(s: Sampler): Promise<void> {
  // A slow reading or server must not pile up ticks.
  if (s.busy) return;
  s.busy = true;
  const targets = [...s.targets];
  try {
    const figures = await s.reader.read();
    totals.samples++;
    // One report per connection and host, however many executors share them.
    const groups = new Map<QuotaConnection, Map<string, LoadReportTarget[]>>();
    for (const t of targets) {
      const byHost = groups.get(t.connection) ?? new Map<string, LoadReportTarget[]>();
      groups.set(t.connection, byHost);
      byHost.set(t.host, [...(byHost.get(t.host) ?? []), t]);
    }
    const reports = [...groups].flatMap(([connection, byHost]) =>
      [...byHost].map(async ([host, group]) => {
        try {
          const { throttleFactor } = await connection.quota.reportLoad({ host, ...figures });
          totals.reports++;
          for (const t of group) safely(() => t.onReport(throttleFactor));
        } catch (error) {
          totals.failures++;
          for (const t of group) safely(() => t.onError(error));
        }
      }),
    );
    await Promise.all(reports);
  } catch (error) {
    totals.failures++;
    for (const t of targets) safely(() => t.onError(error));
  } finally {
    s.busy = false;
  }
}

/** A hook that throws must not stop the sampler nor surface as an unhandled rejection. */
function safely(hook: () => void): void {
  try {
    hook();
  } catch {
    // The hook's own fault; nothing to do here.
  }
}
